"""toolkit.doctor(): versions, widget front end, nest_asyncio and whether the sandbox answers."""

from __future__ import annotations

import importlib
import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import toolkit
mod = importlib.import_module("toolkit.widgets.doctor")  # the module (the package exports the function)
from toolkit.widgets.doctor import FAIL, INFO, OK, WARN, Check, DoctorReport


def versions(**found: str | None):  # type: ignore[no-untyped-def]
    real = {"toolkit": "0.1.0", "ipywidgets": "8.1.5", "jupyterlab_widgets": "3.0.13", "pandas": "2.2.3",
            "httpx": "0.28.1", "pillow": "11.0.0", "jupyterlab": "4.3.0"}
    real.update(found)
    return lambda dist: real.get(dist)


def test_report_lists_the_versions_that_matter() -> None:
    report = toolkit.doctor(sandbox=False)
    names = [c.name for c in report]
    for name in ("Python", "toolkit", "ipywidgets", "jupyterlab_widgets", "pandas", "httpx", "Pillow",
                 "widgets render", "nest_asyncio"):
        assert name in names
    assert report["pandas"].detail == __import__("pandas").__version__
    assert report["Pillow"].detail == __import__("PIL").__version__
    text = str(report)
    assert "ipywidgets" in text and report["ipywidgets"].detail in text


def test_a_missing_package_is_a_problem_with_what_to_do() -> None:
    checks = {c.name: c for c in mod.check_versions(versions(httpx=None, jupyterlab=None))}
    assert checks["httpx"].status == FAIL and "./run setup" in checks["httpx"].todo
    assert checks["jupyterlab"].status == INFO  # optional
    assert not DoctorReport(list(checks.values())).ok


def test_widget_front_end_check() -> None:
    ok = mod.check_widgets(versions(), shell="ZMQInteractiveShell")
    assert ok.status == OK and "8.1.5" in ok.detail
    mismatch = mod.check_widgets(versions(jupyterlab_widgets="1.1.0"), shell="ZMQInteractiveShell")
    assert mismatch.status == FAIL and "jupyterlab_widgets 3.x" in mismatch.detail
    assert "jupyterlab_widgets>=3,<4" in mismatch.todo
    missing = mod.check_widgets(versions(jupyterlab_widgets=None), shell="ZMQInteractiveShell")
    assert missing.status == FAIL and "jupyterlab_widgets not installed" in missing.detail
    plain = mod.check_widgets(versions(), shell=None)
    assert plain.status == WARN and "plain Python" in plain.detail
    # this test process is not a kernel
    assert toolkit.doctor(sandbox=False)["widgets render"].status == WARN


def test_nest_asyncio_is_detected() -> None:
    code = ("from toolkit.widgets.doctor import nest_asyncio_applied, check_nest_asyncio\n"
            "before = nest_asyncio_applied()\n"
            "import nest_asyncio; nest_asyncio.apply()\n"
            "print(before, nest_asyncio_applied(), check_nest_asyncio().status)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True", WARN]
    assert not mod.nest_asyncio_applied()  # and the test process itself is clean


@pytest.mark.integration
def test_a_running_sandbox_answers(sb) -> None:  # type: ignore[no-untyped-def]
    report = toolkit.doctor()
    lines = [c for c in report if c.name.startswith("sandbox ")]
    assert {c.name for c in lines} >= {f"sandbox {svc} (this kernel)" for svc in sb.urls}
    assert all(c.status == OK and "answers at" in c.detail for c in lines)
    # plain words next to a green tick, not a bare status code such as "HTTP 404" or "HTTP 401"
    # (compared without the URL: its port may hold the digits 404 or 401)
    for svc, url in sb.urls.items():
        detail = report[f"sandbox {svc} (this kernel)"].detail
        assert detail == f"answers at {url} (the sandbox is up)", detail
        assert not re.search(r"HTTP|\b40[0-9]\b", detail.replace(url, "")), detail


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.integration
def test_sandbox_file_from_run_lab(sb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    secret = "file-secret-Qw93ndLx"
    dead = f"http://127.0.0.1:{free_port()}"
    path = tmp_path / "sandbox.json"
    path.write_text(json.dumps({"urls": {"uddata": sb.urls["uddata"], "dokus": dead},
                                "credentials": {"uddata": {"client_secret": secret}}}) + "\n")
    monkeypatch.setenv("TOOLKIT_SANDBOX_FILE", str(path))
    monkeypatch.setattr("toolkit.sandbox.running_sandboxes", lambda: [])  # as in a kernel of ./run lab
    monkeypatch.setattr("toolkit.core.discovery._announced", [])
    read = []
    real_discover = toolkit.sandbox.discover
    monkeypatch.setattr("toolkit.sandbox.discover", lambda *a: read.append(a) or real_discover(*a))
    report = toolkit.doctor(timeout=1.0)
    assert read, "the doctor finds the other process's sandbox through core's discovery"
    assert report["sandbox uddata (another process)"].status == OK
    assert "is up" in report["sandbox uddata (another process)"].detail
    dead_line = report["sandbox dokus (another process)"]
    assert dead_line.status == FAIL and dead in dead_line.detail and "./run lab" in dead_line.todo
    assert not report.ok
    assert secret not in str(report) and secret not in report._repr_html_()
    monkeypatch.setenv("TOOLKIT_SANDBOX_FILE", str(tmp_path / "gone.json"))
    assert toolkit.doctor(timeout=1.0)["sandbox file"].status == WARN


def test_no_sandbox_says_how_to_start_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("toolkit.sandbox.running_sandboxes", lambda: [])
    monkeypatch.setattr("toolkit.sandbox.discover", lambda *a: None)
    checks = mod.check_sandbox(env={})
    assert [c.status for c in checks] == [INFO] and "toolkit.sandbox.start()" in checks[0].todo


def test_html_is_escaped_and_plain_text_readable() -> None:
    report = DoctorReport([Check("x", FAIL, "<script>alert(1)</script>", "do <b>this</b>"), Check("y", OK, "fine")])
    page = report._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;" in page and "do &lt;b&gt;this" in page
    text = str(report)
    assert "✖ x" in text and "→ do <b>this</b>" in text and "needs attention" in text
    assert report.to_frame().columns.tolist() == ["name", "status", "detail", "todo"]
