"""Boknett downloads over loopback: one row per object, names cleaned and never clobbering each other,
streamed (bounded memory for a 200 MB object), complete or absent, 403/404/410 rows, re-runs fetch nothing,
overwrite fetches all, bad concurrency refused, the server's clock learnt, faults survived."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest

import toolkit
from toolkit.core.errors import ValidationError
from toolkit.core.http import RetryPolicy
from toolkit.sandbox import Sandbox
from toolkit.sandbox.boknett import BoknettEmulator
from toolkit.testing import assert_no_secrets

pytestmark = pytest.mark.integration

FAST = RetryPolicy(base=0.02, cap=0.2, retry_after_cap=0.1)
#: under injected faults (~17 % of calls) eight attempts make a give-up about 1 in a million per call
PATIENT = RetryPolicy(attempts=8, base=0.02, cap=0.2, retry_after_cap=0.1)
COLUMNS = ["isbn13", "type", "outcome", "message", "file", "bytes", "http_status"]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dls() -> Iterator[Sandbox]:
    with toolkit.sandbox.start(services=["boknett"], seed=12) as sandbox:
        yield sandbox


@pytest.fixture
def emu(dls: Sandbox) -> Iterator[BoknettEmulator]:
    emulator = dls.emulator("boknett")
    assert isinstance(emulator, BoknettEmulator)
    emulator.object_count = 120
    with emulator.restored():
        yield emulator
    emulator.object_count = 300
    dls.set_faults("boknett")


@pytest.fixture
def bk(dls: Sandbox, emu: BoknettEmulator) -> Iterator[Any]:
    client = toolkit.boknett.connect(**dls.credentials("boknett"), retry=FAST)
    yield client
    client.close()


def everything(bk: Any, emu: BoknettEmulator) -> Any:
    df = bk.objects(after=datetime.fromtimestamp(emu.now() - 100 * 86400, timezone.utc))
    assert len(df) == emu.object_count
    return df  # row k is change k


def files_of(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".boknett-downloads"))


def fetched(emu: BoknettEmulator) -> int:
    return sum(emu.downloads_by_position.values())


def check_contents(res: Any, folder: Path, emu: BoknettEmulator) -> None:
    for k, row in res.iterrows():
        if row["outcome"] in ("downloaded", "already_downloaded"):
            assert (folder / row["file"]).read_bytes() == emu.body(k), row["file"]
            assert row["bytes"] == len(emu.body(k))


def test_one_row_per_object_files_named_by_content_disposition(bk: Any, emu: BoknettEmulator, tmp_path: Path
                                                               ) -> None:
    df = everything(bk, emu).head(40)
    folder = tmp_path / "covers"
    res = bk.download(df, folder, concurrency=8)
    assert list(res.columns) == COLUMNS and len(res) == 40
    assert res.attrs["kind"] == "assets" and res.attrs["service"] == "boknett"
    assert res["isbn13"].tolist() == df["isbn13"].tolist() and res["type"].tolist() == df["type"].tolist()
    done = res[res["outcome"] == "downloaded"]
    dup = res[res["outcome"] == "duplicate"]
    assert len(done) + len(dup) == 40
    for k, row in done.iterrows():
        assert row["file"] == emu.filename(k) and row["http_status"] == 200
    # the message says more than the outcome or is empty: no "downloaded" beside `downloaded`
    assert done["message"].isna().all() and dup["message"].notna().all()
    check_contents(res, folder, emu)
    assert files_of(folder) == sorted(done["file"])
    assert not (folder / ".boknett-partial").exists()


def test_hostile_names_stay_inside_and_same_names_never_overwrite(bk: Any, emu: BoknettEmulator, tmp_path: Path
                                                                  ) -> None:
    emu.hostile_names = True
    df = everything(bk, emu)
    folder = tmp_path / "deep" / "covers"
    res = bk.download(df, folder, concurrency=8)
    done = res[res["outcome"] == "downloaded"]
    assert set(res["outcome"]) <= {"downloaded", "duplicate"}
    assert done["file"].is_unique
    assert len(files_of(folder)) == len(done)
    check_contents(res, folder, emu)  # each object's own bytes: none overwrote another
    renamed = done[done["message"].str.contains("saved as", na=False)]
    assert len(renamed) > 0 and all("~" in f for f in renamed["file"])
    everything_written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert all(p.startswith("deep/covers/") and p.count("/") == 2 for p in everything_written)
    assert not any(f.startswith(".") and f != ".boknett-downloads.sqlite" for f in os.listdir(folder))


def test_rerun_fetches_nothing_and_overwrite_fetches_all(bk: Any, emu: BoknettEmulator, tmp_path: Path) -> None:
    df = everything(bk, emu).head(30)
    folder = tmp_path / "f"
    first = bk.download(df, folder)
    n = int((first["outcome"] == "downloaded").sum())
    before = fetched(emu)
    again = bk.download(df, folder)
    assert fetched(emu) == before  # not one file fetched again
    assert (again["outcome"] == "already_downloaded").sum() == n
    assert again.loc[again["outcome"] == "already_downloaded", "file"].tolist() == \
        first.loc[first["outcome"] == "downloaded", "file"].tolist()
    os.remove(folder / first.loc[first["outcome"] == "downloaded", "file"].iloc[0])
    third = bk.download(df, folder)
    assert fetched(emu) == before + 1 and (third["outcome"] == "downloaded").sum() == 1
    forced = bk.download(df, folder, overwrite=True)
    assert fetched(emu) == before + 1 + n and (forced["outcome"] == "downloaded").sum() == n
    assert files_of(folder) == sorted(first.loc[first["outcome"] == "downloaded", "file"])  # replaced, not doubled
    check_contents(forced, folder, emu)


def test_isbn13_as_text_as_numbers_or_missing_with_an_ean_is_the_same_object(bk: Any, emu: BoknettEmulator,
                                                                            tmp_path: Path) -> None:
    """The same rows in three shapes: the report's text, read back from a CSV (isbn13/ean int64, float64 once
    a value is missing), and records with Python ints. Each object keeps one key ({isbn13}_{type}, or the EAN
    when the ISBN-13 is missing, as php-sdk-met-api's file formatter does), so the re-runs fetch nothing and
    the rows' isbn13 is one string dtype."""
    import pandas as pd

    df = everything(bk, emu).head(24)
    folder = tmp_path / "shapes"
    first = bk.download(df, folder)
    done = first["outcome"] == "downloaded"
    assert done.sum() >= 20
    before = fetched(emu)

    csv = tmp_path / "objs.csv"
    df[["isbn13", "ean", "type", "url"]].to_csv(csv, index=False)
    as_ints = pd.read_csv(csv)
    assert str(as_ints["isbn13"].dtype) == "int64"
    with_gap = as_ints.astype({"isbn13": "float64"})
    with_gap.loc[0, "isbn13"] = float("nan")  # the SDK's shape: no ISBN-13, the object known by its EAN
    records = [{"isbn13": int(r.isbn13), "type": r.type, "url": r.url} for r in as_ints.itertuples(index=False)]
    saved_before = as_ints.rename(columns={"url": "reference"})  # a table saved when the link was `reference`
    for shape in (as_ints, with_gap, records, saved_before):
        again = bk.download(shape, folder)
        assert fetched(emu) == before  # not one object fetched again, none saved twice
        assert str(again["isbn13"].dtype) == "string"
        assert again["outcome"].tolist() == ["already_downloaded" if d else o
                                             for d, o in zip(done, first["outcome"])]
        assert again["file"].tolist() == first["file"].tolist()
        expected = df["isbn13"].tolist()
        if shape is with_gap:
            expected[0] = pd.NA
        assert again["isbn13"].tolist() == expected
    assert files_of(folder) == sorted(first.loc[done, "file"])
    # a row with neither an ISBN-13 nor an EAN is still invalid
    none = bk.download([{"isbn13": None, "ean": float("nan"), "type": "ol", "url": df["url"].iloc[0]}],
                       folder)
    assert none["outcome"].tolist() == ["invalid"] and "isbn13 (or ean)" in none["message"].iloc[0]


def test_403_404_410_are_rows_with_plain_messages(dls: Sandbox, bk: Any, emu: BoknettEmulator, tmp_path: Path
                                                  ) -> None:
    mine = emu.object_record(1)
    other = emu.object_record(2, user=1)
    unknown = {**emu.object_record(3), "reference": f"{emu.base_url}/metadata/export/object/download?id=bm9wZQ%3D%3D"}
    expired = emu.object_record(4, issued=emu.now() - 2 * 86400)
    foreign = {**emu.object_record(5), "reference": "https://example.invalid/metadata/export/object/download?id=x"}
    seen = len(emu.requests)
    res = bk.download([mine, other, unknown, expired, foreign], tmp_path / "f", concurrency=3)
    assert res["outcome"].tolist() == ["downloaded", "forbidden", "not_found", "expired", "refused"]
    assert res["http_status"].tolist()[:4] == [200, 403, 404, 410]
    messages = res["message"].tolist()
    assert "another Boknett user" in messages[1]
    assert "pull the report again" in messages[2]
    assert "expired" in messages[3] and "pull the report again" in messages[3]
    assert files_of(tmp_path / "f") == [emu.filename(1)]
    assert not any("example.invalid" in r.headers.get("host", "") for r in emu.requests[seen:])


def test_expired_ids_then_a_fresh_report_downloads(bk: Any, emu: BoknettEmulator, tmp_path: Path) -> None:
    emu.download_lifetime = 0.0
    df = everything(bk, emu).head(5)
    res = bk.download(df, tmp_path / "f")
    assert set(res["outcome"]) <= {"expired", "duplicate"} and "expired" in set(res["outcome"])
    emu.download_lifetime = 86400.0
    fresh = bk.download(everything(bk, emu).head(5), tmp_path / "f")
    assert set(fresh["outcome"]) <= {"downloaded", "duplicate"}
    check_contents(fresh, tmp_path / "f", emu)


def test_cut_downloads_leave_nothing_under_the_final_name(bk: Any, emu: BoknettEmulator, tmp_path: Path) -> None:
    df = everything(bk, emu).head(6)
    folder = tmp_path / "f"
    emu.cut_download_after = 500
    res = bk.download(df, folder, concurrency=3)
    assert set(res["outcome"]) <= {"failed", "duplicate"} and "failed" in set(res["outcome"])
    assert files_of(folder) == []  # no partial file under any name, no temporary leftovers
    assert [p.name for p in folder.iterdir()] == [".boknett-downloads.sqlite"] or \
        all(p.name.startswith(".boknett-downloads") for p in folder.iterdir())
    emu.cut_download_after = None
    again = bk.download(df, folder)
    assert set(again["outcome"]) <= {"downloaded", "duplicate"}
    check_contents(again, folder, emu)


@pytest.mark.parametrize("concurrency", [0, -1, 1.5, True, "8", 1000, None])
def test_bad_concurrency_is_refused_before_sending(bk: Any, emu: BoknettEmulator, tmp_path: Path,
                                                   concurrency: Any) -> None:
    seen = len(emu.requests)
    with pytest.raises(ValidationError) as info:
        bk.download([emu.object_record(1)], tmp_path / "f", concurrency=concurrency)
    assert "concurrency" in str(info.value) and "Boknett" in str(info.value)
    assert len(emu.requests) == seen


def test_empty_input_and_missing_columns(bk: Any, emu: BoknettEmulator, tmp_path: Path) -> None:
    import pandas as pd

    empty = bk.download(bk.objects(next=emu.cursor(emu.object_count)), tmp_path / "f")
    assert list(empty.columns) == COLUMNS and len(empty) == 0
    with pytest.raises(ValidationError) as info:
        bk.download(pd.DataFrame({"isbn13": ["1"]}), tmp_path / "f")
    assert "url" in str(info.value)


def test_server_clock_ahead_learnt_by_a_download_only_client(dls: Sandbox, emu: BoknettEmulator, tmp_path: Path
                                                             ) -> None:
    records = [emu.object_record(i) for i in range(1, 5)]
    emu.clock_offset = 5400.0
    with toolkit.boknett.connect(**dls.credentials("boknett"), retry=FAST) as client:
        res = client.download(records, tmp_path / "f", concurrency=4)
        assert set(res["outcome"]) <= {"downloaded", "duplicate"}
        assert abs(client.aio.clock.offset - 5400) < 5


def test_downloads_under_faults_and_expiring_tickets(make_sandbox: Any, tmp_path: Path, debug_logs: Any) -> None:
    sandbox = make_sandbox(services=["boknett"], seed=13)
    emu = sandbox.emulator("boknett")
    emu.object_count = 80
    sandbox.set_faults("boknett", **{"503": .1, "429": .05, "drop": .02, "retry_after": 0.05})
    emu.tgt_lifetime = 1.0
    with toolkit.boknett.connect(**sandbox.credentials("boknett"), retry=PATIENT) as client:
        df = everything(client, emu)
        res = client.download(df, tmp_path / "f", concurrency=8)
        bad = res[~res["outcome"].isin(["downloaded", "duplicate"])]
        assert bad.empty, bad.to_string()
        check_contents(res, tmp_path / "f", emu)
        again = client.download(df, tmp_path / "f", concurrency=8)
        assert set(again["outcome"]) <= {"already_downloaded", "duplicate"}
    assert any(r.fault for r in emu.requests)
    assert_no_secrets(debug_logs.text + res.to_string(), emu.secrets())


def test_a_200_mb_object_is_streamed_with_bounded_memory(dls: Sandbox, emu: BoknettEmulator, tmp_path: Path) -> None:
    emu.big_object_bytes = 200 * 1024 * 1024
    creds = dls.credentials("boknett")
    record = emu.big_object_record()
    small = emu.object_record(1)
    script = textwrap.dedent("""
        import json, os, resource, sys
        import toolkit

        def peak_kb():
            # VmHWM: the peak of this process image (ru_maxrss may carry the parent's peak over fork + exec)
            try:
                for line in open("/proc/self/status"):
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1])
            except OSError:
                pass
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

        args = json.loads(sys.argv[1])
        bk = toolkit.boknett.connect(username=args["username"], password=os.environ["TOOLKIT_BOKNETT_PASSWORD"],
                                     base_url=args["base_url"], login_url=args["login_url"])
        bk.download([args["small"]], args["folder"] + "/warm", progress=False)   # imports, pool, journal
        before = peak_kb()
        res = bk.download([args["big"]], args["folder"] + "/big", progress=False)
        after = peak_kb()
        print(json.dumps({"growth_kb": after - before, "outcome": res["outcome"][0], "bytes": int(res["bytes"][0]),
                          "file": res["file"][0]}))
    """)
    args = {"username": creds["username"], "base_url": creds["base_url"], "login_url": creds["login_url"],
            "folder": str(tmp_path), "big": record, "small": small}
    password = creds["password"]
    env = {**os.environ, "TOOLKIT_BOKNETT_PASSWORD": password.reveal() if hasattr(password, "reveal") else password}
    done = subprocess.run([sys.executable, "-c", script, json.dumps(args)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["outcome"] == "downloaded" and result["bytes"] == 200 * 1024 * 1024
    assert (tmp_path / "big" / result["file"]).stat().st_size == 200 * 1024 * 1024
    print(f"RSS growth for a 200 MB download: {result['growth_kb'] / 1024:.1f} MB")
    assert result["growth_kb"] < 60 * 1024, f"RSS grew {result['growth_kb'] / 1024:.0f} MB"


def test_what_was_under_a_name_is_noted_from_the_one_look_that_chose_it(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Choosing a file's name and noting what was there before (the identity a later run compares with, to
    tell a complete download from a file that was there already) take one lstat, not two — and the noted
    identity is the file's own: a regular file's [inode, size, mtime], None for nothing or a folder, and
    never a look taken for another name."""
    from toolkit.boknett import downloads

    (tmp_path / "there.jpg").write_bytes(b"old cover")
    (tmp_path / "folder.jpg").mkdir()
    calls: list[str] = []
    real = os.lstat
    monkeypatch.setattr(downloads.os, "lstat", lambda path: (calls.append(os.fspath(path)), real(path))[1])
    names = downloads._Names(tmp_path, True, [])
    noted: dict[str, Any] = {}

    def name_for(item: str, suggested: str) -> str:
        return names.reserve(item, lambda name: noted.__setitem__(name, names.identity(name)))(suggested)

    info = real(tmp_path / "there.jpg")
    assert name_for("9788202437930_os", "there.jpg") == "there.jpg" and len(calls) == 1
    assert noted["there.jpg"] == [info.st_ino, info.st_size, info.st_mtime_ns]
    assert name_for("9788202437930_ol", "new.jpg") == "new.jpg" and noted["new.jpg"] is None and len(calls) == 2
    assert name_for("9788202437930_org", "folder.jpg") == "folder.jpg" and noted["folder.jpg"] is None
    # a name decided without looking (this object reserved it already): looked at afresh, not from the last look
    names.taken["again.jpg"] = "9788202437930_ly"
    (tmp_path / "again.jpg").write_bytes(b"123")
    assert name_for("9788202437930_ly", "again.jpg") == "again.jpg"
    assert noted["again.jpg"][1] == 3 and calls[-1].endswith("again.jpg")
