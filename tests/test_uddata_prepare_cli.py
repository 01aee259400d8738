"""``toolkit uddata prepare FOLDER --out DIR`` and ``toolkit uddata upload FOLDER --prepare``: run as an analyst
types them, help on every option, exit codes, and no raw CPR number on the terminal."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from toolkit.cli import build_parser
from toolkit.core.credentials import reveal

from .conftest import assert_clean
from .test_uddata_prepare import assert_no_metadata, encode, phone_jpeg, reference, sha


def toolkit(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "import sys, toolkit.cli; sys.exit(toolkit.cli.main())", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})}, cwd=cwd, stdin=subprocess.DEVNULL)


def _subcommand(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    top = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    uddata = top.choices["uddata"]
    verbs = next(a for a in uddata._actions if isinstance(a, argparse._SubParsersAction))
    return verbs.choices[name]


@pytest.mark.parametrize("verb", ["prepare", "upload"])
def test_every_option_has_help(verb: str) -> None:
    parser = _subcommand(verb)
    missing = [a.dest for a in parser._actions if not a.help or a.help == argparse.SUPPRESS]
    assert missing == []
    if verb == "upload":
        assert {"--prepare", "--max-side", "--max-mb", "--min-size", "--distinct"} <= set(parser._option_string_actions)


def test_prepare_writes_the_copies_and_says_what_it_did(tmp_path: Path) -> None:
    folder, out = tmp_path / "photos", tmp_path / "ready"
    folder.mkdir()
    cprs = ["0101051234", "0202052345", "0303053456"]
    (folder / f"{cprs[0]}.jpg").write_bytes(phone_jpeg(reference(60), 6))
    (folder / f"{cprs[1]}.png").write_bytes(encode(reference(61), "PNG"))
    (folder / f"{cprs[2]}.jpg").write_bytes(encode(reference(60), quality=50))  # the first photo again
    before = {p.name: sha(p) for p in folder.iterdir()}
    done = toolkit(["uddata", "prepare", str(folder), "--out", str(out), "--report", str(tmp_path / "r.csv"),
                    "--no-progress"])
    assert done.returncode == 2, done.stderr  # two files are the same photo: not prepared
    assert_clean(done.stdout + done.stderr, cprs, "the prepare command's output")
    assert "duplicate_photo" in done.stdout and "converted from PNG to JPEG" in done.stdout
    assert sum(line.startswith("Uddata+: photo preparation") for line in done.stdout.splitlines()) == 1
    assert sorted(p.name for p in out.glob("*.jpg")) == [f"{cprs[1]}.jpg"]
    assert_no_metadata((out / f"{cprs[1]}.jpg").read_bytes())
    report = pd.read_csv(tmp_path / "r.csv", dtype=str)
    assert sorted(report["cpr"]) == sorted(cprs)  # the file has the numbers, for the analyst's code
    assert {p.name: sha(p) for p in folder.iterdir()} == before
    (folder / f"{cprs[2]}.jpg").unlink()  # the analyst removes the wrong file
    again = toolkit(["uddata", "prepare", str(folder), "--out", str(out), "--no-progress"])
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already_prepared" in again.stdout and "prepared 1" in again.stdout
    bad = toolkit(["uddata", "prepare", str(folder), "--out", str(folder)])
    assert bad.returncode == 3 and "originals are never changed" in bad.stderr
    wrong = toolkit(["uddata", "prepare", str(folder), "--min-size", "big"])
    assert wrong.returncode == 2 and "WIDTHxHEIGHT" in wrong.stderr  # argparse's own refusal


@pytest.mark.integration
def test_upload_with_prepare_from_the_command_line(make_sandbox, tmp_path: Path) -> None:
    sbx = make_sandbox(services=["uddata"])
    emu = sbx.emulator("uddata")
    creds = sbx.credentials("uddata")
    cprs = emu.roster()[60:63]
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / f"{cprs[0]}.jpg").write_bytes(phone_jpeg(reference(70), 8))
    (folder / f"{cprs[1]}.webp").write_bytes(encode(reference(71), "WEBP", quality=90))
    (folder / f"{cprs[2]}.jpg").write_bytes(encode(reference(72, (100, 120))))
    env = {"TOOLKIT_UDDATA_CLIENT_SECRET": reveal(creds["client_secret"])}
    flags = ["--base-url", creds["base_url"], "--institution", creds["institution"], "--client-id",
             creds["client_id"], "--no-progress"]
    plain = toolkit(["uddata", "upload", str(folder), *flags], env)
    assert plain.returncode == 2 and "invalid_name" in plain.stdout  # without --prepare: JPEG only, as it is
    assert set(emu.put_counts) == {cprs[0], cprs[2]} and b"Exif" in emu.images[cprs[0]]
    emu.reset()
    done = toolkit(["uddata", "upload", str(folder), "--prepare", "--max-side", "400", *flags], env)
    assert done.returncode == 2, done.stdout + done.stderr  # the 100 × 120 photo is too small
    assert "too_small" in done.stdout
    assert_clean(done.stdout + done.stderr, [*cprs, reveal(creds["client_secret"])], "the upload's output")
    assert set(emu.put_counts) == {cprs[0], cprs[1]}
    for cpr in cprs[:2]:
        assert_no_metadata(emu.images[cpr])
