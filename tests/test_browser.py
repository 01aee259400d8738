"""Real-browser smoke test: JupyterLab in headless Chromium renders the toolkit's widgets.

Starts ``jupyter lab`` (from this environment) on a temporary folder holding a small notebook, opens it in
Debian's Chromium through Playwright, runs every cell and checks that the image grid, the credentials form
and the doctor's table appear as rendered widgets (not as text such as ``VBox(...)``).
Chromium is ``/usr/bin/chromium`` (CI installs the Debian package); Playwright never downloads a browser.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest
from .conftest import stop_process_group

CHROMIUM = os.environ.get("TOOLKIT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
SCREENSHOT = Path(os.environ.get("TOOLKIT_SCREENSHOT", "/tmp/toolkit-browser-smoke.png"))

CELLS = [
    "import toolkit\nfrom PIL import Image\n"
    "photos = [Image.new('RGB', (400, 300), (40 + 5 * i, 90, 160)) for i in range(30)]\n"
    "grid = toolkit.widgets.image_grid(photos, labels=[f'010190{i:04d}' for i in range(30)], per_page=12)\n"
    "grid",
    "form = toolkit.widgets.credentials_form('uddata', institution='123456')\nform",
    "sb = toolkit.sandbox.start()\ntoolkit.doctor()",
    "dk = toolkit.dokus.connect(**sb.credentials('dokus'))\neditor = toolkit.widgets.product_editor(dk.products)\n"
    "editor",
]


#: JavaScript run in the page (JupyterLab started with expose_app_in_browser)
KERNEL_READY = """() => {
  const app = window.jupyterapp; const panel = app && app.shell.currentWidget;
  const ctx = panel && panel.sessionContext; const kernel = ctx && ctx.session && ctx.session.kernel;
  return !!(ctx && ctx.isReady && kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle');
}"""
RUN_ALL = "() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); return true; }"
STARTED = """() => Array.from(document.querySelectorAll('.jp-Notebook .jp-InputArea-prompt'))
  .some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_notebook(folder: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, folder / "smoke.ipynb")


@pytest.fixture
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """JupyterLab on a temporary folder with ``smoke.ipynb``; yields the notebook's URL and the token
    (sent in a header, never in a URL)."""
    work = tmp_path / "nb"
    work.mkdir()
    write_notebook(work)
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces")}
    env.pop("TOOLKIT_SANDBOX_FILE", None)
    jupyter = Path(sys.executable).parent / "jupyter"
    cmd = [str(jupyter), "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}", f"--ServerApp.token={token}",
           f"--ServerApp.root_dir={work}", "--LabApp.expose_app_in_browser=True"]
    if hasattr(os, "getuid") and os.getuid() == 0:
        cmd.append("--allow-root")
    log_path = tmp_path / "lab.log"
    log = log_path.open("w")
    proc = subprocess.Popen(cmd, cwd=work, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 45
        while True:
            try:
                request = urllib.request.Request(f"{base}/api/status", headers={"Authorization": f"token {token}"})
                with urllib.request.urlopen(request, timeout=2) as r:  # noqa: S310 - loopback only
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, \
                f"JupyterLab did not start:\n{log_path.read_text()[-2000:]}"
            time.sleep(0.3)
        yield f"{base}/lab/tree/smoke.ipynb", token
    finally:
        stop_process_group(proc, 15)
        log.close()


@pytest.mark.browser
@pytest.mark.timeout(150)
def test_widgets_render_in_jupyterlab(chromium: str, lab: tuple[str, str]) -> None:
    url, token = lab
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000},
                                    extra_http_headers={"Authorization": f"token {token}"})
            page.set_default_timeout(30_000)
            page.goto(url)
            page.wait_for_selector(".jp-Notebook .jp-Cell", state="visible")
            # wait until the notebook's kernel is connected and idle, then run every cell ("Run All Cells");
            # asked again if the first request found the session not quite ready
            page.wait_for_function(KERNEL_READY, timeout=60_000)
            for _ in range(3):
                page.evaluate(RUN_ALL)
                try:
                    page.wait_for_function(STARTED, timeout=15_000)
                    break
                except PlaywrightTimeout:
                    continue

            image = page.wait_for_selector(".jp-OutputArea-output img.widget-image", state="visible")
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image)
            natural = page.evaluate("img => [img.naturalWidth, img.naturalHeight]", image)
            assert natural[0] > 300 and natural[1] > 200  # a decoded contact sheet, not a broken icon
            page.wait_for_selector(".jp-OutputArea-output .widget-html-content:has-text('Page 1 of 3')")
            page.wait_for_selector(".jp-OutputArea-output button.widget-button:has-text('Submit')")
            first_src = image.get_attribute("src")
            page.locator(".jp-OutputArea-output button", has_text="Next").click()
            page.wait_for_selector(".widget-html-content:has-text('Page 2 of 3')")
            page.wait_for_function("([img, src]) => img.getAttribute('src') !== src", arg=[image, first_src])
            assert page.locator(".jp-OutputArea-output img.widget-image").count() == 1  # one image widget
            password = page.wait_for_selector(".jp-OutputArea-output .widget-text input[type=password]")
            assert password.input_value() == ""
            doctor = page.wait_for_selector(".jp-OutputArea-output table.toolkit-doctor")
            text = doctor.inner_text()
            assert "Jupyter kernel, ipywidgets" in text and "answers at http://127.0.0.1:" in text, text
            # the Dokus product editor renders as a form with its product list and buttons
            page.wait_for_selector(".jp-OutputArea-output button.widget-button:has-text('Preview plan')")
            apply = page.wait_for_selector(".jp-OutputArea-output button.widget-button:has-text('Apply')")
            assert apply.is_disabled()  # nothing to apply before a plan was previewed
            assert page.locator(".jp-OutputArea-output .widget-select-multiple option").count() > 0
            apply.scroll_into_view_if_needed()
            page.screenshot(path=str(SCREENSHOT.with_name(SCREENSHOT.stem + "-editor.png")))
            # no widget came out as plain text (what a missing front-end extension shows)
            outputs = page.locator(".jp-OutputArea-output").all_inner_texts()
            assert not any(t.startswith(("VBox(", "ImageGrid(", "CredentialsForm(", "ProductEditor("))
                           for t in outputs), outputs
        finally:
            try:
                page.screenshot(path=str(SCREENSHOT), full_page=True)  # to look at, passed or failed
            finally:
                browser.close()
