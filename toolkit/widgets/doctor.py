"""``toolkit.doctor()``: is this notebook environment healthy? Versions, widgets, nest_asyncio, sandbox.

    toolkit.doctor()      # a small table; each line says what is wrong and what to do

Checks:

* versions of the toolkit, Python, ipywidgets, jupyterlab_widgets, pandas, httpx, Pillow;
* whether widgets can render here: ipywidgets and its JupyterLab extension are installed with matching
  major versions, and the code runs in a Jupyter kernel;
* whether ``nest_asyncio`` was applied in this process (the toolkit does not need it and never applies
  it; it can break other async libraries);
* whether the sandbox answers: every sandbox started in this process, else the one found in another
  process (``toolkit sandbox``, ``./run lab``) through core's discovery (:func:`toolkit.sandbox.discover`,
  the same lookup ``environment="sandbox"`` uses), gets one GET of its root with a short timeout. Any
  HTTP answer (a 401 or 404 from a service root is normal) means it is up: the line says so in words;
* with ``live=True``, the live contract check (:func:`toolkit.check`, read-only calls) of every service whose
  credentials are found (``TOOLKIT_<SERVICE>_<FIELD>`` in the environment or a ``.env`` file, or the keyring):
  one line per assumption (``ok``; ``differs`` as a warning; ``failed`` as a problem), and the rows as one
  DataFrame in ``report.live``. A service without credentials is one information line; nothing is sent to it.
"""

from __future__ import annotations

import asyncio
import html
import os
import platform
import sys
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable

from ..core.redact import redact

__all__ = ["doctor", "DoctorReport", "Check", "check_live"]

OK, WARN, FAIL, INFO = "ok", "warning", "problem", "info"
_ICONS = {OK: "✔", WARN: "⚠", FAIL: "✖", INFO: "ℹ"}

#: (distribution, shown name, needed) — needed ones are reported as a problem when missing
PACKAGES = (
    ("toolkit", "toolkit", True),
    ("ipywidgets", "ipywidgets", True),
    ("jupyterlab_widgets", "jupyterlab_widgets", True),
    ("pandas", "pandas", True),
    ("httpx", "httpx", True),
    ("pillow", "Pillow", True),
    ("jupyterlab", "jupyterlab", False),
)

#: ipywidgets major version → the jupyterlab_widgets major version that renders it
WIDGET_PAIRS = {8: 3, 7: 1}


@dataclass(frozen=True)
class Check:
    """One line of the report: what was checked, the outcome, and what to do about it."""

    name: str
    status: str
    detail: str
    todo: str = ""


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _major(version: str | None) -> int | None:
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return None


def check_versions(version: Callable[[str], str | None] = _version) -> list[Check]:
    checks = [Check("Python", OK if sys.version_info >= (3, 11) else FAIL, platform.python_version(),
                    "" if sys.version_info >= (3, 11) else "Use Python 3.11 or newer (./run setup).")]
    for dist, shown, needed in PACKAGES:
        found = version(dist)
        if dist == "toolkit" and found is None:
            from .._version import __version__

            found = f"{__version__} (not installed, imported from source)"
        if found:
            checks.append(Check(shown, OK, found))
        else:
            checks.append(Check(shown, FAIL if needed else INFO, "not installed",
                                "Install it: ./run setup (or pip install -e '.[lab]')." if needed else ""))
    return checks


def _kernel_name() -> str | None:
    """The IPython shell class when running in IPython, else None."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    try:
        shell = ipython.get_ipython()
    except Exception:  # noqa: BLE001
        return None
    return type(shell).__name__ if shell is not None else None


def check_widgets(version: Callable[[str], str | None] = _version, shell: str | None | bool = False) -> Check:
    """ipywidgets and jupyterlab_widgets present with matching majors, and a Jupyter kernel running."""
    shell_name = _kernel_name() if shell is False else shell
    widgets, lab = version("ipywidgets"), version("jupyterlab_widgets")
    if not widgets or not lab:
        missing = " and ".join(n for n, v in (("ipywidgets", widgets), ("jupyterlab_widgets", lab)) if not v)
        return Check("widgets render", FAIL, f"{missing} not installed",
                     "Install them in the kernel's environment (./run setup), then restart JupyterLab.")
    want = WIDGET_PAIRS.get(_major(widgets) or 0)
    if want is not None and _major(lab) != want:
        return Check("widgets render", FAIL,
                     f"ipywidgets {widgets} needs jupyterlab_widgets {want}.x, found {lab}",
                     f"pip install 'jupyterlab_widgets>={want},<{want + 1}' and restart JupyterLab; otherwise "
                     "widgets show as text ('VBox(...)') instead of controls.")
    if shell_name != "ZMQInteractiveShell":
        where = "plain Python" if shell_name is None else f"IPython ({shell_name}), not a Jupyter kernel"
        return Check("widgets render", WARN, f"ipywidgets {widgets} + jupyterlab_widgets {lab}, but this is {where}",
                     "Widgets show only in JupyterLab / Notebook 7 / VS Code; functions still return DataFrames "
                     "and images here.")
    return Check("widgets render", OK, f"Jupyter kernel, ipywidgets {widgets} + jupyterlab_widgets {lab}",
                 "If a form shows as text, reload the browser page (the widget extension loads with the page).")


def nest_asyncio_applied() -> bool:
    """True when ``nest_asyncio`` (or ``nest_asyncio2``) patched asyncio in this process."""
    if getattr(asyncio, "_nest_patched", False):
        return True
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return False
    return bool(getattr(type(loop), "_nest_patched", False) or getattr(loop, "_nest_patched", False))


def check_nest_asyncio() -> Check:
    if nest_asyncio_applied():
        return Check("nest_asyncio", WARN, "applied in this kernel",
                     "Not needed by the toolkit (it runs on its own loop thread). If other async libraries "
                     "misbehave, remove nest_asyncio.apply() and restart the kernel.")
    return Check("nest_asyncio", OK, "not applied (good: the toolkit never needs it)")


async def _probe(service: str, url: str, timeout: float) -> tuple[int | None, str]:
    from ..core.http import HttpClient, RetryPolicy, Timeouts
    from ..core.errors import ToolkitError

    http = HttpClient("sandbox", url, retry=RetryPolicy(attempts=1),
                      timeouts=Timeouts(connect=timeout, read=timeout, write=timeout, pool=timeout))
    try:
        response = await http.request("GET", "/", allow=range(100, 600), authenticate=False,
                                      what=f"reach the {service} sandbox")
        return response.status_code, ""
    except ToolkitError as exc:
        return None, exc.message
    finally:
        await http.aclose()


def check_sandbox(timeout: float = 2.0, env: dict[str, str] | None = None) -> list[Check]:
    """One line per sandbox service: this kernel's sandboxes, else the one core's discovery finds in
    another process. ``env`` (default ``os.environ``) only decides whether a named but empty sandbox file
    is worth a warning."""
    from ..sandbox import discover, running_sandboxes  # read at each call (tests replace them)
    from ..core.discovery import SANDBOX_FILE_VAR, sandbox_file
    from ..core.sync import run

    env = dict(os.environ) if env is None else env
    targets: list[tuple[str, str, str]] = []  # (where, service, url)
    local = running_sandboxes()
    for sb in local:
        targets += [("this kernel", svc, url) for svc, url in sb.urls.items()]
    checks: list[Check] = []
    if not local:
        found = discover()  # core's discovery: the sandbox file of another process
        if found is not None and found not in local:
            targets += [("another process", svc, url) for svc, url in found.urls.items()]
        elif env.get(SANDBOX_FILE_VAR):
            checks.append(Check("sandbox file", WARN, f"{SANDBOX_FILE_VAR} names {sandbox_file().name}, but no "
                                "running sandbox was found through it",
                                "Start JupyterLab with ./run lab, or run ./run sandbox (toolkit sandbox) in a "
                                "terminal."))
    if not targets:
        return checks + [Check("sandbox", INFO, "no sandbox running in this kernel",
                               "Start one: sb = toolkit.sandbox.start() (the notebooks do this in their first cell).")]

    async def probe_all() -> list[tuple[int | None, str]]:
        return list(await asyncio.gather(*(_probe(svc, url, timeout) for _, svc, url in targets)))

    for (where, svc, url), (status, error) in zip(targets, run(probe_all())):
        name = f"sandbox {svc} ({where})"
        if status is not None:  # any HTTP answer: the server is up (a root often answers 401 or 404)
            checks.append(Check(name, OK, f"answers at {url} (the sandbox is up)"))
        else:
            todo = ("Restart it: sb = toolkit.sandbox.start()." if where == "this kernel"
                    else "Restart JupyterLab with ./run lab, or run ./run sandbox in a terminal.")
            checks.append(Check(name, FAIL, f"does not answer at {url}: {error}", todo))
    return checks


#: a verdict of the live contract check → the status of its doctor line
_VERDICT_STATUS = {"ok": OK, "differs": WARN, "failed": FAIL}


def _live_one(name: str) -> tuple[list[Check], Any]:
    """The doctor lines and the check frame of one service (None when it was not checked)."""
    from ..core.check import check
    from ..core.credentials import env_name, load_credentials
    from ..core.errors import ToolkitError, service_name
    from ..core.registry import spec

    title = service_name(name)
    found = load_credentials(name)
    if not len(found):
        return [Check(f"{title} live check", INFO, "no credentials found: not checked",
                      f"Set {env_name(name, '<field>')} variables (see the README) to check it.")], None
    field = spec(name).environment_field
    missing = [] if field and str(found.get(field, "")).strip() == "sandbox" else found.missing()
    if missing:  # (the sandbox's demo credentials fill what is missing)
        return [Check(f"{title} live check", WARN, f"credentials incomplete ({', '.join(missing)} missing): not "
                      "checked", "Set " + ", ".join(env_name(name, m) for m in missing) + ".")], None
    try:
        result = check(name)
    except ToolkitError as exc:
        return [Check(f"{title} live check", FAIL, exc.message, exc.hint or "")], None
    lines = [Check(f"{title} {row.check}", _VERDICT_STATUS.get(row.verdict, INFO), row.answered,
                   "" if row.verdict == "ok" else row.what_to_do) for row in result.itertuples(index=False)]
    return lines, result


def check_live(services: list[str] | None = None) -> tuple[list[Check], Any]:
    """The live contract check of every service whose credentials are found (see the module docstring):
    ``(lines, frame of every row or None)``."""
    import pandas as pd

    from ..core.registry import names

    lines: list[Check] = []
    frames = []
    for name in services or names():
        found, result = _live_one(name)
        lines += found
        if result is not None:
            frames.append(result)
    live = None
    if frames:
        live = pd.concat(frames, ignore_index=True)
        live.attrs.update({"kind": "records", "service": "toolkit",
                           "summary": "; ".join(f.attrs.get("summary", "") for f in frames)})
    return lines, live


class DoctorReport:
    """The checks of :func:`doctor`; prints as plain lines, shows as a table in a notebook. ``live`` is the
    frame of the live contract check (``doctor(live=True)``), or None."""

    def __init__(self, checks: list[Check], live: Any = None) -> None:
        self.checks = checks
        self.live = live

    @property
    def ok(self) -> bool:
        """True when nothing is a problem (warnings allowed)."""
        return all(c.status != FAIL for c in self.checks)

    def __iter__(self) -> Any:
        return iter(self.checks)

    def __len__(self) -> int:
        return len(self.checks)

    def __getitem__(self, name: str) -> Check:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    def to_frame(self) -> Any:
        from ..core.frames import frame

        return frame([c.__dict__ for c in self.checks],
                     schema={"name": "string", "status": "string", "detail": "string", "todo": "string"})

    def __str__(self) -> str:
        width = max((len(c.name) for c in self.checks), default=0)
        lines = [f"{_ICONS[c.status]} {c.name.ljust(width)}  {c.detail}" + (f"\n  {' ' * width}  → {c.todo}"
                                                                             if c.todo else "")
                 for c in self.checks]
        lines.append("All good." if self.ok else "Something needs attention: see the lines marked ✖.")
        return redact("\n".join(lines))

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        colours = {OK: "#1a7f37", WARN: "#9a6700", FAIL: "#cf222e", INFO: "#57606a"}
        rows = "".join(
            f"<tr><td style='color:{colours[c.status]}'>{_ICONS[c.status]}</td><td>{html.escape(c.name)}</td>"
            f"<td>{html.escape(redact(c.detail))}</td><td>{html.escape(redact(c.todo))}</td></tr>"
            for c in self.checks)
        summary = "All good." if self.ok else "Something needs attention: see the lines marked ✖."
        return (f"<table class='toolkit-doctor'><thead><tr><th></th><th>check</th><th>result</th>"
                f"<th>what to do</th></tr></thead><tbody>{rows}</tbody></table><p>{html.escape(summary)}</p>")


def doctor(*, sandbox: bool = True, timeout: float = 2.0, live: bool = False) -> DoctorReport:
    """Check the notebook environment: versions, widgets, nest_asyncio and (``sandbox=True``) the sandbox;
    with ``live=True`` also the live contract check of every service whose credentials are found (read-only
    calls; :func:`toolkit.check`), its rows in ``report.live``."""
    checks = check_versions()
    checks.append(check_widgets())
    checks.append(check_nest_asyncio())
    if sandbox:
        checks += check_sandbox(timeout)
    rows = None
    if live:
        lines, rows = check_live()
        checks += lines
    return DoctorReport(checks, rows)
