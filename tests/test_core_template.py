"""The service template of issue 8: one test per defect it fixes, against the sandbox on loopback."""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import toolkit
from toolkit.core.errors import ToolkitError, TransportError, Unauthorized, ValidationError
from toolkit.core.http import HTTPResponse, MockTransport
from toolkit.sandbox.uddata_data import make_photo

from .conftest import read_line

ROOT = Path(__file__).resolve().parents[1]


def photo_folder(tmp: Path, emulator: Any, n: int) -> list[str]:
    cprs = emulator.roster()[:n]
    tmp.mkdir(parents=True, exist_ok=True)
    for i, cpr in enumerate(cprs):
        (tmp / f"{cpr}.jpg").write_bytes(make_photo(1000 + i, size=(60, 80)))
    return cprs


# 1 -------------------------------------------------------------------------------------------------------
def test_one_journal_two_destinations_uploads_to_both(make_sandbox: Any, tmp_path: Path) -> None:
    first, second = make_sandbox(seed=0, services=["uddata"]), make_sandbox(seed=0, services=["uddata"])
    folder = tmp_path / "photos"
    cprs = photo_folder(folder, first.emulator("uddata"), 6)
    journal = tmp_path / "journal.sqlite"
    with toolkit.uddata.connect(**first.credentials("uddata")) as ud:
        one = ud.upload_folder(folder, journal=journal, progress=False)
    with toolkit.uddata.connect(**second.credentials("uddata")) as ud:
        two = ud.upload_folder(folder, journal=journal, progress=False)
    assert set(one["outcome"]) == {"uploaded"} and set(two["outcome"]) == {"uploaded"}
    assert all(second.emulator("uddata").put_counts[c] == 1 for c in cprs)
    with toolkit.uddata.connect(**second.credentials("uddata")) as ud:  # and a re-run to the second sends nothing
        again = ud.upload_folder(folder, journal=journal, progress=False)
    assert set(again["outcome"]) == {"already_uploaded"}
    assert all(second.emulator("uddata").put_counts[c] == 1 for c in cprs)


def test_old_journal_is_migrated_and_checked_on_the_service(make_sandbox: Any, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    sb = make_sandbox(seed=0, services=["uddata"])
    folder = tmp_path / "photos"
    cprs = photo_folder(folder, sb.emulator("uddata"), 3)
    journal = folder / ".uddata-upload.sqlite"
    db = sqlite3.connect(journal)  # the first version's table: keyed by CPR and SHA-256 only
    db.execute("CREATE TABLE uploads (cpr TEXT NOT NULL, sha256 TEXT NOT NULL, file TEXT, state TEXT NOT NULL, "
               "http_status INTEGER, message TEXT, attempts INTEGER NOT NULL DEFAULT 0, updated TEXT NOT NULL, "
               "PRIMARY KEY (cpr, sha256))")
    import hashlib

    for cpr in cprs:
        sha = hashlib.sha256((folder / f"{cpr}.jpg").read_bytes()).hexdigest()
        db.execute("INSERT INTO uploads VALUES (?, ?, ?, 'uploaded', 201, 'ok', 1, '2026-01-01T00:00:00')",
                   (cpr, sha, f"{cpr}.jpg"))
    db.commit()
    db.close()
    with toolkit.uddata.connect(**sb.credentials("uddata")) as ud:
        result = ud.upload_folder(folder, progress=False)
    assert "migrated 3 entries" in capsys.readouterr().out
    # the old entries named no destination: this service does not hold the photos, so they are sent
    assert set(result["outcome"]) == {"uploaded"}
    assert all(sb.emulator("uddata").put_counts[c] == 1 for c in cprs)


# 2 -------------------------------------------------------------------------------------------------------
def test_wrong_secret_makes_one_token_request_for_a_whole_audit(sb: Any) -> None:
    emulator = sb.emulator("uddata")
    creds = {**sb.credentials("uddata"), "client_secret": "not-the-secret"}
    before = sum(1 for r in emulator.requests if r.path.endswith("/oauth/token"))
    cprs = (emulator.roster() * 5)[:500]
    with toolkit.uddata.connect(**creds) as ud:
        result = ud.audit(cprs, progress=False)
    token_requests = sum(1 for r in emulator.requests if r.path.endswith("/oauth/token")) - before
    assert token_requests <= 2
    assert len(result) == 500 and result["http_status"].dropna().eq(401).all()
    assert result["message"].str.contains("client secret", case=False).all()


def test_unreachable_service_fails_an_audit_without_retrying_every_item() -> None:
    calls: list[str] = []

    def refuse(request: Any) -> Any:
        calls.append(request.url.path)
        raise toolkit.core.http.httpx.ConnectError("refused", request=request)

    ud = toolkit.uddata.connect(base_url="http://127.0.0.1:9", institution="123456", client_id="c",
                                client_secret="s", transport=MockTransport(refuse))
    ud.aio.http.retry = toolkit.core.http.RetryPolicy(attempts=3, base=0.01, cap=0.02)
    result = ud.audit([f"01019{i:05d}" for i in range(40)], progress=False)
    assert len(result) == 40
    # one token fetch (with its retries) for all 40, not one per item
    assert len(calls) <= 6, len(calls)
    assert result["message"].str.contains("could not connect|failed repeatedly").all()
    assert result["message"].str.contains("could not connect").any()


# 3 -------------------------------------------------------------------------------------------------------
def test_ten_threads_one_folder_one_journal_send_each_photo_once(make_sandbox: Any, tmp_path: Path) -> None:
    sb = make_sandbox(seed=0, services=["uddata"], latency_ms=5)
    emulator = sb.emulator("uddata")
    folder = tmp_path / "photos"
    cprs = photo_folder(folder, emulator, 50)
    results: list[Any] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            with toolkit.uddata.connect(**sb.credentials("uddata")) as ud:
                results.append(ud.upload_folder(folder, concurrency=4, progress=False))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    puts = sum(emulator.put_counts[c] for c in cprs)
    assert puts == 50
    assert all(len(r) == 50 and set(r["outcome"]) <= {"uploaded", "already_uploaded"} for r in results)


def test_two_processes_one_journal_send_each_photo_once(make_sandbox: Any, tmp_path: Path) -> None:
    sb = make_sandbox(seed=0, services=["uddata"], latency_ms=5)
    emulator = sb.emulator("uddata")
    folder = tmp_path / "photos"
    cprs = photo_folder(folder, emulator, 30)
    creds = {k: (v.reveal() if isinstance(v, toolkit.Secret) else v) for k, v in sb.credentials("uddata").items()}
    script = ("import json, sys, toolkit\n"
              "ud = toolkit.uddata.connect(**json.loads(sys.argv[1]))\n"
              "r = ud.upload_folder(sys.argv[2], concurrency=4, progress=False)\n"
              "print(sorted(set(r['outcome'])))\n")
    procs = [subprocess.Popen([sys.executable, "-c", script, json.dumps(creds), str(folder)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(120) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    assert sum(emulator.put_counts[c] for c in cprs) == 30


# 4 -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["missing folder", "directory", "corrupt file"])
def test_bad_journal_path_is_a_plain_validation_error(sb: Any, tmp_path: Path, kind: str) -> None:
    folder = tmp_path / "photos"
    photo_folder(folder, sb.emulator("uddata"), 1)
    if kind == "missing folder":
        journal = tmp_path / "nowhere" / "j.sqlite"
    elif kind == "directory":
        journal = tmp_path / "adir"
        journal.mkdir()
    else:
        journal = tmp_path / "j.sqlite"
        journal.write_bytes(b"this is not a database" * 100)
    with toolkit.uddata.connect(**sb.credentials("uddata")) as ud:
        with pytest.raises(ValidationError) as info:
            ud.upload_folder(folder, journal=journal, progress=False)
    text = str(info.value)
    assert str(journal) in text and "Uddata+" in text and "What to do" in text
    assert info.value.__cause__ is None and (info.value.__context__ is None or info.value.__suppress_context__)


# 5 -------------------------------------------------------------------------------------------------------
def test_sync_methods_have_the_async_signatures_and_docstrings(sb: Any) -> None:
    for module in (toolkit.uddata, toolkit.dokus, toolkit.livingdocs, toolkit.boknett, toolkit.mediaflow):
        sync_cls, async_cls = module.Client, module.AsyncClient
        for name, func in vars(async_cls).items():
            if name.startswith("_") or not inspect.iscoroutinefunction(func):
                continue
            sync_method = getattr(sync_cls, name)
            assert inspect.signature(sync_method) == inspect.signature(func), (module.__name__, name)
            assert sync_method.__doc__ == func.__doc__
    audit = inspect.signature(toolkit.uddata.Client.audit)
    assert list(audit.parameters)[:3] == ["self", "cprs", "concurrency"]
    assert "photo" in (toolkit.uddata.Client.audit.__doc__ or "")
    import pydoc

    # Python 3.13's pydoc puts a long signature over several lines
    text = re.sub(r"[\s|]+", " ", pydoc.render_doc(toolkit.uddata.Client, renderer=pydoc.plaintext))
    assert re.search(r"audit\( ?self, cprs", text)
    with toolkit.dokus.connect(**sb.credentials("dokus")) as dk:
        assert "filters" in str(inspect.signature(type(dk.products).list))


def test_async_client_works_in_the_analysts_loops_after_the_sync_api(sb: Any) -> None:
    ud = toolkit.uddata.connect(**sb.credentials("uddata"))
    assert len(ud.students()) > 0  # the private loop

    async def mine() -> int:
        return len(await ud.aio.students())

    assert asyncio.run(mine()) > 0  # the analyst's own loop
    assert asyncio.run(mine()) > 0  # and another one after it
    assert len(ud.students()) > 0  # and the sync API again
    ud.close()


# 6 -------------------------------------------------------------------------------------------------------
def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    if path.name == "__init__.py":
        package = package.rsplit(".", 1)[0] + ".__init__"
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:-node.level]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            found.update(f"{mod}.{a.name}" for a in node.names)
    return {m for m in found if m.startswith("toolkit")}


def test_no_import_circles_and_no_service_imports_the_sandbox() -> None:
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
               for p in (ROOT / "toolkit").rglob("*.py")}
    graph = {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}
    # package __init__ files re-export their own modules; a circle through them is not a design circle
    graph = {k: {m for m in v if not (k.startswith(m + ".") and modules[m].name == "__init__.py")}
             for k, v in graph.items()}
    seen: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        seen[node] = 1
        for nxt in graph[node]:
            if seen.get(nxt) == 1:
                raise AssertionError("import circle: " + " -> ".join(stack[stack.index(nxt):] + [nxt])
                                     if nxt in stack else nxt)
            if nxt not in seen:
                visit(nxt, stack + [nxt])
        seen[node] = 2

    for name in graph:
        if name not in seen:
            visit(name, [name])
    for service in toolkit.core.registry.names():
        for path in (ROOT / "toolkit" / service).rglob("*.py"):
            assert not any(m.startswith("toolkit.sandbox") for m in _imports(path)), path


def test_core_keeps_no_table_of_service_names() -> None:
    for path in (ROOT / "toolkit" / "core").glob("*.py"):
        text = path.read_text()
        named = [s for s in ("livingdocs", "boknett", "mediaflow", "dokus") if f'"{s}"' in text]
        assert not named, (path.name, named)


def test_missing_fields_name_argument_variable_and_flag(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env
    for var in [v for v in os.environ if v.startswith("TOOLKIT_UDDATA_")]:
        monkeypatch.delenv(var)
    with pytest.raises(ValidationError) as info:
        toolkit.uddata.connect(base_url="http://127.0.0.1:9", institution="123456", client_id="c")
    text = str(info.value)
    assert "client_secret=" in text and "TOOLKIT_UDDATA_CLIENT_SECRET" in text
    with pytest.raises(ValidationError) as info:
        toolkit.core.service.connect("uddata", via="cli", base_url="http://127.0.0.1:9", institution="1")
    text = str(info.value)
    assert "--client-id" in text and "TOOLKIT_UDDATA_CLIENT_SECRET" in text and "connect()" not in text
    assert "--client-secret" not in text  # a secret has no flag: the variable or the prompt


def test_environment_sandbox_finds_a_sandbox_of_another_process(tmp_path: Path) -> None:
    file = tmp_path / "sandbox.json"
    env = {**os.environ, "TOOLKIT_SANDBOX_FILE": str(file)}
    proc = subprocess.Popen([sys.executable, "-m", "toolkit.cli", "sandbox", "--json", "--services", "uddata"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = json.loads(read_line(proc))
        script = ("import toolkit\nud = toolkit.uddata.connect(environment='sandbox')\n"
                  "print(ud.aio.base_url, len(ud.students()))\n")
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        base, count = out.stdout.split()
        assert base == line["urls"]["uddata"] and int(count) > 0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
    assert proc.returncode == 0 and not file.exists()  # the file goes with the sandbox


# 7 -------------------------------------------------------------------------------------------------------
def test_set_faults_without_a_service_applies_to_every_service(make_sandbox: Any) -> None:
    sb = make_sandbox(seed=0, services=["uddata", "dokus"])
    sb.set_faults(latency_ms=250)
    assert {name: cfg.latency_ms for name, cfg in sb.faults.items()} == {"uddata": 250.0, "dokus": 250.0}
    sb.set_faults(**{"503": 0.5})
    assert all(cfg.error_503 == 0.5 and cfg.latency_ms == 250.0 for cfg in sb.faults.values())


# 8 -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("attempt", range(5))
def test_sandbox_cli_stopped_right_after_start_exits_cleanly(tmp_path: Path, attempt: int) -> None:
    env = {**os.environ, "TOOLKIT_SANDBOX_FILE": str(tmp_path / "sb.json")}
    proc = subprocess.Popen([sys.executable, "-m", "toolkit.cli", "sandbox", "--json", "--services", "uddata"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = read_line(proc)
    proc.send_signal(signal.SIGTERM if attempt % 2 else signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert json.loads(line)["urls"]["uddata"].startswith("http://127.0.0.1:")
    assert proc.returncode == 0, err


# 9 -------------------------------------------------------------------------------------------------------
def test_star_import_gives_every_public_name() -> None:
    code = ("from toolkit import *\n"
            "assert callable(uddata.connect) and callable(livingdocs.connect) and callable(mediaflow.connect)\n"
            "assert callable(boknett.connect) and callable(dokus.connect) and issubclass(ValidationError, ToolkitError)\n"
            "print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_a_refused_credential_is_unauthorized_in_plain_words(sb: Any) -> None:
    creds = {**sb.credentials("uddata"), "client_secret": "wrong"}
    with toolkit.uddata.connect(**creds) as ud:
        with pytest.raises(Unauthorized) as info:
            ud.students()
        with pytest.raises(Unauthorized):
            ud.students()  # remembered: no second token request
    assert "client secret" in str(info.value).lower() and "Uddata+" in str(info.value)


def test_connecting_to_a_stopped_sandbox_says_so(make_sandbox: Any) -> None:
    sb = make_sandbox(seed=0, services=["uddata"])
    creds = sb.credentials("uddata")
    sb.stop()
    with toolkit.uddata.connect(**creds) as ud:
        ud.aio.http.retry = toolkit.core.http.RetryPolicy(attempts=2, base=0.01, cap=0.02)
        with pytest.raises(TransportError) as info:
            ud.students()
    assert "sandbox" in str(info.value) and "toolkit.sandbox.start()" in str(info.value)
    assert isinstance(info.value, ToolkitError)
