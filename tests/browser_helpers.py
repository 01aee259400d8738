"""Helpers of the real-browser tests: find Chromium, serve JupyterLab, run a notebook in it, read what it shows.

Chromium is Debian's ``/usr/bin/chromium`` (``TOOLKIT_CHROMIUM`` to override); Playwright never downloads a
browser. JupyterLab runs in its own process group on 127.0.0.1 with a random token sent in a header.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.request
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from .conftest import stop_process_group
from toolkit.testing import free_port

CHROMIUM = os.environ.get("TOOLKIT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
SCREENSHOTS = Path(os.environ.get("TOOLKIT_SCREENSHOTS", "/tmp/toolkit-browser"))

#: widgets that came out as their Python repr: the front end could not render them
WIDGET_AS_TEXT = re.compile(r"(?m)^\s*(?:VBox|HBox|Box|GridBox|Output|IntProgress|FloatProgress|Tab|Accordion|"
                            r"Button|Dropdown|SelectMultiple|Textarea|Text|Password|HTML|Label|ImageGrid|"
                            r"CredentialsForm|ProductEditor)\((?:children=|layout=|value=|description=|"
                            r"outputs=|\))|Image\(value=")
#: an exception in a stream (stderr) output
EXCEPTION_TEXT = re.compile(r"(?m)Traceback \(most recent call last\)|^[\w.]*(?:Error|Exception)\b:")


def browser_or_skip() -> str:
    """The Chromium binary, once Playwright is importable too. Missing: FAIL under CI (``CI=true``), otherwise
    skip with the reason, also issued as a warning so pytest's default summary shows why."""
    problems = []
    if not Path(CHROMIUM).exists():
        problems.append(f"{CHROMIUM} is missing (install Debian's chromium: apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problems.append("the playwright package is missing (pip install -e '.[test]')")
    if problems:
        message = "real-browser test not run: " + "; ".join(problems)
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message + " (CI=true: the browser test is required)", pytrace=False)
        warnings.warn(message, pytest.PytestWarning, stacklevel=2)
        pytest.skip(message)
    return CHROMIUM


@dataclass
class Lab:
    base: str
    token: str
    root: Path
    log: Path

    def api(self, method: str, path: str) -> Any:
        request = urllib.request.Request(f"{self.base}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=10) as r:  # noqa: S310 - loopback only
            body = r.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """Stop every notebook's kernel (and so the sandbox it started), one notebook after the other."""
        for session in self.api("GET", "/api/sessions") or []:
            with contextlib.suppress(OSError):
                self.api("DELETE", f"/api/sessions/{session['id']}")


def write_settings(settings: Path) -> None:
    """All cells stay in the page (no windowing, so the whole notebook can be read); no news pop-ups."""
    tracker = settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True, exist_ok=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))
    notes = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notes.parent.mkdir(parents=True, exist_ok=True)
    notes.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))


@contextlib.contextmanager
def jupyterlab(tmp: Path, without_widgets: bool = False) -> Iterator[Lab]:
    """JupyterLab (this environment's) serving ``tmp/nb``; stopped with its kernels afterwards.
    ``without_widgets`` disables the ipywidgets front end (what a broken install shows: widgets as text)."""
    root = tmp / "nb"
    root.mkdir(parents=True, exist_ok=True)
    write_settings(tmp / "settings")
    if without_widgets:
        page_config = tmp / "cfg" / "labconfig" / "page_config.json"
        page_config.parent.mkdir(parents=True, exist_ok=True)
        page_config.write_text(json.dumps({"disabledExtensions": {"@jupyter-widgets/jupyterlab-manager": True}}))
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "JUPYTER_CONFIG_DIR": str(tmp / "cfg"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp / "settings"), "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces")}
    env.pop("TOOLKIT_SANDBOX_FILE", None)
    env.pop("TOOLKIT_MODE", None)  # the notebooks run against their own sandbox
    jupyter = Path(sys.executable).parent / "jupyter"
    cmd = [str(jupyter), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
           "--LabApp.news_url=", "--ServerApp.terminals_enabled=False"]
    if hasattr(os, "getuid") and os.getuid() == 0:
        cmd.append("--allow-root")
    log_path = tmp / "lab.log"
    log = log_path.open("w")
    proc = subprocess.Popen(cmd, cwd=root, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    lab = Lab(f"http://127.0.0.1:{port}", token, root, log_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                lab.api("GET", "/api/status")
                break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, \
                f"JupyterLab did not start:\n{log_path.read_text()[-2000:]}"
            time.sleep(0.3)
        yield lab
    finally:
        stop_process_group(proc, 15)
        log.close()


# -- in the page (JupyterLab started with expose_app_in_browser) -------------------------------------------
KERNEL_READY = """() => {
  const app = window.jupyterapp; const panel = app && app.shell.currentWidget;
  const ctx = panel && panel.sessionContext; const kernel = ctx && ctx.session && ctx.session.kernel;
  return !!(ctx && ctx.isReady && kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle');
}"""
RUN_ALL = "() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); return true; }"
STARTED = """() => Array.from(document.querySelectorAll('.jp-Notebook .jp-InputArea-prompt'))
  .some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))"""
#: every cell of the current notebook: its model (source, execution count, outputs) and its rendered outputs
CELLS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const text = t => Array.isArray(t) ? t.join('') : (t || '');
  const cells = panel.content.widgets.map((cell, i) => {
    const j = cell.model.toJSON();
    const busy = Array.from(cell.node.querySelectorAll('.jp-InputArea-prompt')).some(p => p.textContent.includes('*'));
    return {index: i, type: j.cell_type, count: j.execution_count ?? null, busy,
      source: text(j.source),
      outputs: (j.outputs || []).map(o => ({type: o.output_type, name: o.name || '', ename: o.ename || '',
        evalue: o.evalue || '', text: text(o.text),
        data: Object.fromEntries(Object.entries(o.data || {}).filter(([k]) => !k.startsWith('image/'))
                                   .map(([k, v]) => [k, typeof v === 'string' || Array.isArray(v) ? text(v)
                                                                                               : JSON.stringify(v)]))})),
      rendered: Array.from(cell.node.querySelectorAll('.jp-OutputArea-output')).map(e => [e.innerText].concat(
        Array.from(e.querySelectorAll('input:not([type=password]), textarea')).map(i => i.value)).join('\\n'))};
  });
  return {status: kernel ? kernel.status : 'none', cells};
}"""


#: the window widths at which every notebook's results are looked at: a wide screen and a laptop's
LAYOUT_WIDTHS = (1600, 1000)
#: the narrowest a progress bar may be drawn (px) before it is "squeezed to a block"
MIN_BAR_PX = 60
#: every result table, progress bar and text output of the current notebook, measured as drawn: a column
#: narrower than its header, a header broken over lines, cell text one or two letters a line, a table cut off
#: by something that does not scroll, text cut by pandas ("…" at max_colwidth), a dtype footer under a
#: Series, and a progress widget whose counts leave the bar's row, whose bar is squeezed or whose text is cut
LAYOUT = r"""(minBar) => {
  const found = [];
  const ctx = document.createElement('canvas').getContext('2d');
  const widthOf = (el, text) => { const cs = getComputedStyle(el);
    ctx.font = `${cs.fontStyle} ${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
    return ctx.measureText(text).width; };
  const lines = el => { const r = document.createRange(); r.selectNodeContents(el);
    return new Set(Array.from(r.getClientRects()).filter(q => q.width > 0).map(q => Math.round(q.top))).size; };
  const room = el => { const cs = getComputedStyle(el);
    return el.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight); };
  const short = t => t.replace(/\s+/g, ' ').trim().slice(0, 40);
  const cells = Array.from(document.querySelectorAll('.jp-Notebook .jp-Cell'));
  cells.forEach((cell, index) => {
    const where = `cell ${index}`;
    cell.querySelectorAll('.jp-OutputArea-output').forEach(output => {
      // printed text (print(series)) is str(), the code's own choice: only displayed results are looked at
      if (/application\/vnd\.jupyter\.std/.test(output.dataset.mimeType || '')) return;
      if (/(^|\n)(Name: [^\n]*, )?dtype: [\w\[\]]+\s*$/.test(output.innerText))
        found.push(`${where}: a Series shown with its dtype footer (${short(output.innerText.split('\n').pop())})`);
    });
    cell.querySelectorAll('.jp-OutputArea-output table').forEach(table => {
      table.querySelectorAll('thead th').forEach(th => {
        const text = th.innerText.trim();
        if (!text) return;
        const need = widthOf(th, text), has = room(th);
        if (need > has + 1)
          found.push(`${where}: column "${short(text)}" is ${Math.round(has)} px wide, its header needs ${Math.round(need)} px`);
        if (lines(th) > 1) found.push(`${where}: header "${short(text)}" is broken over ${lines(th)} lines`);
      });
      table.querySelectorAll('tbody td, tbody th').forEach(td => {
        const text = td.innerText.trim();
        if (text.length >= 8 && lines(td) > 1 && lines(td) * 3 > text.length)
          found.push(`${where}: cell text "${short(text)}" drawn ${lines(td)} lines of a few letters`);
        if (text.length >= 40 && /(\.\.\.|…)$/.test(text))
          found.push(`${where}: cell text cut short: "${short(text.slice(-40))}"`);
      });
      // the first ancestor that does not let the table overflow: it must scroll, or hold the whole table
      const box = table.getBoundingClientRect();
      for (let el = table.parentElement; el && el !== document.body; el = el.parentElement) {
        const ox = getComputedStyle(el).overflowX;
        if (ox === 'visible') continue;
        const edge = el.getBoundingClientRect().right;
        if (ox !== 'auto' && ox !== 'scroll' && box.right > edge + 1)
          found.push(`${where}: table cut off by ${Math.round(box.right - edge)} px at the right (nothing scrolls)`);
        break;
      }
    });
    cell.querySelectorAll('.jp-OutputArea-output .widget-hbox').forEach(bar => {
      const progress = Array.from(bar.children).find(k => /widget-h?progress/.test(k.className));
      if (!progress || getComputedStyle(bar).visibility === 'hidden' || bar.offsetParent === null) return;
      // the counts are the text after the bar: beside the bar (the description may go above it)
      const kids = Array.from(bar.children), counts = kids[kids.indexOf(progress) + 1];
      const middle = el => { const r = el.getBoundingClientRect(); return (r.top + r.bottom) / 2; };
      const text = short(bar.innerText), line = progress.getBoundingClientRect();
      if (counts && (counts.getBoundingClientRect().top > middle(progress) ||
                     counts.getBoundingClientRect().bottom < middle(progress)))
        found.push(`${where}: progress counts wrap to another row than the bar ("${text}")`);
      if (kids.some(k => k !== progress && k !== counts && k.offsetParent !== null && middle(k) > line.bottom))
        found.push(`${where}: progress text below the bar ("${text}")`);
      const edge = bar.parentElement.getBoundingClientRect().right;
      if (kids.some(k => k.offsetParent !== null && k.getBoundingClientRect().right > edge + 1))
        found.push(`${where}: progress text runs past the output's edge ("${text}")`);
      const inner = progress.querySelector('.progress') || progress;
      if (inner.getBoundingClientRect().width < minBar)
        found.push(`${where}: progress bar squeezed to ${Math.round(inner.getBoundingClientRect().width)} px ("${text}")`);
      // text is never cut; it takes two lines only where one line beside a 7em bar cannot hold it
      const room = bar.clientWidth - 7 * parseFloat(getComputedStyle(bar).fontSize);
      bar.querySelectorAll('.widget-html-content').forEach(label => {
        const one = widthOf(label, label.innerText.replace(/\u200b/g, ''));
        if (label.scrollWidth > label.clientWidth + 1 || (lines(label) > 1 && one < room))
          found.push(`${where}: progress text does not fit on its line ("${short(label.innerText)}")`);
      });
    });
  });
  return found;
}"""
#: every output worth looking at: result tables, progress bars, printed text
SHOT_TARGETS = ".jp-OutputArea-output:has(table), .jp-OutputArea-output:has(.widget-hprogress)"


def layout_problems(page: Any, width: int, shots: Path | None = None, stem: str = "") -> list[str]:
    """Resize the window to ``width`` (the notebook reflows, nothing runs again), measure every result table
    and progress bar (:data:`LAYOUT`) and, with ``shots``, save a picture of each such output there."""
    page.set_viewport_size({"width": width, "height": 1000})
    page.wait_for_timeout(400)  # JupyterLab lays its panels out again after the resize
    found = [f"at {width} px: {p}" for p in page.evaluate(LAYOUT, MIN_BAR_PX)]
    if shots is not None:
        shots.mkdir(parents=True, exist_ok=True)
        outputs = page.locator(SHOT_TARGETS).all()
        tallest = max([o.bounding_box()["height"] for o in outputs if o.bounding_box()] or [0])
        # a window as tall as the tallest output, so that each picture holds its whole output
        page.set_viewport_size({"width": width, "height": int(min(max(1000, tallest + 300), 12_000))})
        page.wait_for_timeout(400)
        for i, output in enumerate(outputs):
            with contextlib.suppress(Exception):
                output.screenshot(path=str(shots / f"{stem}-{width}-{i:02d}.png"), timeout=10_000)
        page.set_viewport_size({"width": width, "height": 1000})
    return found


@dataclass
class Run:
    """What one notebook showed after Run All Cells."""

    name: str
    seconds: float
    finished: bool
    cells: list[dict[str, Any]]
    body: str
    screenshot: Path
    problems: list[str] = field(default_factory=list)
    #: what the layout check found at each window width (:data:`LAYOUT_WIDTHS`), see :func:`layout_problems`
    layout: dict[int, list[str]] = field(default_factory=dict)


def mask(value: str) -> str:
    return value[:6] + "-****" if value.isdigit() else value[:2] + "***"


def masked(text: str, forbidden: list[str]) -> str:
    for value in sorted(forbidden, key=len, reverse=True):
        if value:
            text = text.replace(value, mask(value))
    return text


def around(text: str, value: str, forbidden: list[str], width: int = 60) -> str:
    at = text.find(value)
    return masked(text[max(0, at - width): at + len(value) + width], forbidden).replace("\n", " ")


def run_notebook(browser: Any, lab: Lab, name: str, timeout_s: float = 240,
                 inspect: Callable[[Any], None] | None = None, widths: tuple[int, ...] = ()) -> Run:
    """Open ``name`` (a file in ``lab.root``) in a new page, Run All Cells, wait until the kernel is idle and
    every code cell ran (or execution stopped at an error), screenshot it, return what it shows.
    ``inspect(page)`` runs before the page is closed (clicks and checks of particular widgets). For each of
    ``widths`` the finished notebook is measured at that window width (``Run.layout``, pictures of its
    results in ``SCREENSHOTS/layout``)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    started = time.monotonic()
    workspace = re.sub(r"\W", "-", Path(name).stem)
    page = browser.new_page(viewport={"width": widths[0] if widths else 1400, "height": 1000},
                            extra_http_headers={"Authorization": f"token {lab.token}"})
    page.set_default_timeout(30_000)
    shot = SCREENSHOTS / f"{Path(name).stem}.png"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {"status": "none", "cells": []}
    finished = False
    layout: dict[int, list[str]] = {}
    try:
        page.goto(f"{lab.base}/lab/workspaces/{workspace}/tree/{name}?reset")
        page.wait_for_selector(".jp-Notebook .jp-Cell", state="visible", timeout=60_000)
        page.wait_for_function(KERNEL_READY, timeout=90_000)
        for _ in range(3):  # asked again if the first request found the session not quite ready
            page.evaluate(RUN_ALL)
            try:
                page.wait_for_function(STARTED, timeout=15_000)
                break
            except PlaywrightTimeout:
                continue
        deadline, idle_polls = started + timeout_s, 0
        while time.monotonic() < deadline:
            state = page.evaluate(CELLS)
            code = [c for c in state["cells"] if c["type"] == "code"]
            idle = state["status"] == "idle" and not any(c["busy"] for c in code)
            idle_polls = idle_polls + 1 if idle else 0
            if idle and all(c["count"] is not None for c in code):
                finished = True
                break
            # Run All stops at a cell that raised: the rest never gets a count
            if idle_polls >= 4 and any(o["type"] == "error" for c in code for o in c["outputs"]):
                finished = True
                break
            time.sleep(1)
        page.wait_for_timeout(500)  # let the last widgets render
        state = page.evaluate(CELLS)
        # what is on screen: the page's text and what its text fields hold (innerText leaves inputs out)
        body = page.inner_text("body") + "\n" + "\n".join(page.evaluate(
            "() => Array.from(document.querySelectorAll('input:not([type=password]), textarea')).map(i => i.value)"))
        errors = any(o["type"] == "error" for c in state["cells"] for o in c.get("outputs", []))
        if inspect is not None and finished and not errors:  # an error output is reported by problems_of
            inspect(page)
        for width in widths if finished else ():
            layout[width] = layout_problems(page, width, SCREENSHOTS / "layout", Path(name).stem)
    finally:
        with contextlib.suppress(Exception):
            page.screenshot(path=str(shot), full_page=True)
        page.close()
    return Run(name, time.monotonic() - started, finished, state["cells"], body, shot, layout=layout)


def problems_of(run: Run, forbidden: list[str]) -> list[str]:
    """Every error output, widget rendered as text, raw CPR or secret on screen (values masked)."""
    found: list[str] = []
    code = [c for c in run.cells if c["type"] == "code"]
    if not run.finished:
        waiting = [c["index"] for c in code if c["count"] is None]
        found.append(f"did not finish Run All Cells in time; cells {waiting} have no execution count")
    for cell in code:
        where = f"cell {cell['index']} ({masked(cell['source'].strip().splitlines()[0][:60], forbidden) if cell['source'].strip() else 'empty'})"
        for out in cell["outputs"]:
            if out["type"] == "error":
                found.append(f"{where}: error output {out['ename']}: {masked(out['evalue'][:300], forbidden)}")
            elif out["type"] == "stream" and out["name"] == "stderr" and EXCEPTION_TEXT.search(out["text"]):
                found.append(f"{where}: exception on stderr: {masked(out['text'][-400:], forbidden)}")
        for text in cell["rendered"]:
            hit = WIDGET_AS_TEXT.search(text)
            if hit:
                found.append(f"{where}: a widget rendered as text: {masked(text[hit.start():hit.start() + 80], forbidden)!r}")
        saved = " ".join([o["text"] + o["evalue"] + " ".join(o["data"].values()) for o in cell["outputs"]])
        for value in forbidden:
            if value and value in saved:
                found.append(f"{where}: {mask(value)} (raw) in the outputs saved with the notebook: "
                             f"...{around(saved, value, forbidden)}...")
    for value in forbidden:
        if value and value in run.body:
            cells = [c["index"] for c in run.cells if any(value in t for t in c["rendered"]) or value in c["source"]]
            place = (f"cell {cells[0]}" if len(cells) == 1 else f"cells {', '.join(map(str, cells))}" if cells
                     else "outside the cells")
            found.append(f"{mask(value)} (raw) visible on the page ({place}): "
                         f"...{around(run.body, value, forbidden)}...")
    return found
