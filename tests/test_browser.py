"""Real-browser tests: every notebook runs top to bottom in JupyterLab in headless Chromium and shows no error,
no widget as text, no raw CPR and no secret; and the toolkit's widgets render and respond.

One JupyterLab server (on a temporary copy of the notebooks, so the committed files never change) and one
Chromium serve every notebook, one after the other. ``notebooks/*.ipynb`` is globbed: a new notebook joins.
Each notebook runs once; its run is also measured at 1600 and 1000 px wide (result tables and progress
bars keep their shape: ``browser_helpers.LAYOUT``), with a picture of each result under ``layout/``.
Screenshots of each notebook's end state go to ``/tmp/toolkit-browser`` (``TOOLKIT_SCREENSHOTS``).
Chromium missing: the tests fail under CI (``CI=true``) and are skipped with the reason elsewhere.
"""

from __future__ import annotations

import ast
import contextlib
import re
import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest

import toolkit
from .browser_helpers import (CHROMIUM_ARGS, LAYOUT_WIDTHS, SCREENSHOTS, Lab, Run, browser_or_skip, jupyterlab,
                              problems_of, run_notebook)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
TIMINGS: dict[str, float] = {}
#: each notebook runs once per session; its run is shared by the tests that read it (errors, layout)
RUNS: dict[str, Run] = {}

SMOKE_CELLS = [
    "import toolkit\nfrom PIL import Image\n"
    "photos = [Image.new('RGB', (400, 300), (40 + 5 * i, 90, 160)) for i in range(30)]\n"
    "grid = toolkit.widgets.image_grid(photos, labels=[f'010190{i:04d}' for i in range(30)], per_page=12)\n"
    "grid",
    "form = toolkit.widgets.credentials_form('uddata', institution='123456')\nform",
    "sb = toolkit.sandbox.start(seed=0)\ntoolkit.doctor()",
    "dk = toolkit.dokus.connect(**sb.credentials('dokus'))\neditor = toolkit.widgets.product_editor(dk.products)\n"
    "editor",
]


@pytest.fixture(scope="module")
def forbidden() -> list[str]:
    """The secrets and raw CPR numbers (plain and ``ddmmyy-xxxx``) of the sandbox with seed 0, which every
    notebook starts in its kernel (see test_notebooks_start_the_sandbox_with_seed_0)."""
    with toolkit.sandbox.start(seed=0) as sb:
        cprs = [c for c in sb.personal_data() if re.fullmatch(r"\d{10}", c)]
        values = list(sb.secrets()) + list(sb.personal_data()) + [f"{c[:6]}-{c[6:]}" for c in cprs]
    assert cprs and sb.secrets()
    return sorted(set(values))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    browser_or_skip()  # no server at all without a browser
    with jupyterlab(tmp_path_factory.mktemp("lab")) as server:
        yield server


@pytest.fixture(scope="module")
def browser(lab: Lab) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=browser_or_skip(), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()
    if TIMINGS:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (SCREENSHOTS / "timings.txt").write_text("".join(f"{k}\t{v:.1f} s\n" for k, v in TIMINGS.items()))


def test_notebooks_start_the_sandbox_with_seed_0() -> None:
    """The browser test knows the raw CPRs and secrets on screen only if each notebook's sandbox has seed 0."""
    assert NOTEBOOKS
    for path in NOTEBOOKS:
        import nbformat

        nb = nbformat.read(path, as_version=4)
        source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        tree = ast.parse("\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))))
        names = {t.id: n.value.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
                 and isinstance(n.value, ast.Constant) for t in n.targets if isinstance(t, ast.Name)}
        for call in ast.walk(tree):
            if isinstance(call, ast.Call) and ast.unparse(call.func).endswith("sandbox.start"):
                seed = next((k.value for k in call.keywords if k.arg == "seed"), ast.Constant(0))
                value = seed.value if isinstance(seed, ast.Constant) else names.get(getattr(seed, "id", None))
                assert value == 0, f"{path.name}: {ast.unparse(call)} does not use seed 0"


def notebook_run(notebook: Path, lab: Lab, browser: Any) -> Run:
    """Run All Cells of (a copy of) ``notebook`` once, measured at every width of ``LAYOUT_WIDTHS``."""
    if notebook.name not in RUNS:
        committed = notebook.read_bytes()
        shutil.copy2(notebook, lab.root / notebook.name)  # a copy: the committed notebook never changes
        try:
            RUNS[notebook.name] = run_notebook(browser, lab, notebook.name, timeout_s=240, widths=LAYOUT_WIDTHS)
        finally:
            lab.shutdown_kernels()
        assert notebook.read_bytes() == committed, f"{notebook.name} was changed by running it"
        TIMINGS[notebook.name] = RUNS[notebook.name].seconds
    return RUNS[notebook.name]


@pytest.mark.browser
@pytest.mark.timeout(420)
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_all_cells_in_jupyterlab(notebook: Path, lab: Lab, browser: Any, forbidden: list[str]) -> None:
    run = notebook_run(notebook, lab, browser)
    problems = problems_of(run, forbidden)
    assert not problems, (f"{notebook.name} after Run All Cells in JupyterLab ({run.seconds:.0f} s, "
                          f"screenshot {run.screenshot}):\n  " + "\n  ".join(problems))


@pytest.mark.browser
@pytest.mark.timeout(420)
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_results_and_progress_bars_keep_their_shape(notebook: Path, lab: Lab, browser: Any) -> None:
    """At 1600 and at 1000 px: no column of a result table narrower than its header, no header broken over
    lines, no cell text one letter a line or cut with "...", no table cut off without a scroll bar, no
    ``Name: …, dtype: …`` footer, and every progress bar on one line, not squeezed, its text whole (the
    notebook's run is shared with the test above; pictures of each result in ``SCREENSHOTS/layout``)."""
    run = notebook_run(notebook, lab, browser)
    assert run.finished, f"{notebook.name} did not finish Run All Cells"
    assert set(run.layout) == set(LAYOUT_WIDTHS)
    problems = [p for width in LAYOUT_WIDTHS for p in run.layout[width]]
    assert not problems, f"{notebook.name} in JupyterLab:\n  " + "\n  ".join(problems)


@pytest.mark.browser
@pytest.mark.timeout(300)
def test_widgets_render_and_respond_in_jupyterlab(lab: Lab, browser: Any, forbidden: list[str]) -> None:
    """The image grid pages through decoded images, the credentials form starts blank, the doctor's table and
    the Dokus product editor render as widgets (not as text such as ``VBox(...)``)."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in SMOKE_CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, lab.root / "widget_smoke.ipynb")

    def inspect(page: Any) -> None:
        image = page.wait_for_selector(".jp-OutputArea-output img.widget-image", state="visible")
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image)
        natural = page.evaluate("img => [img.naturalWidth, img.naturalHeight]", image)
        assert natural[0] > 300 and natural[1] > 200  # a decoded contact sheet, not a broken icon
        page.wait_for_selector(".jp-OutputArea-output .widget-html-content:has-text('Page 1 of 3')")
        page.wait_for_selector(".jp-OutputArea-output button.widget-button:has-text('Submit')")
        first_src = image.get_attribute("src")
        page.locator(".jp-OutputArea-output button", has_text="Next").first.click()
        page.wait_for_selector(".widget-html-content:has-text('Page 2 of 3')")
        page.wait_for_function("([img, src]) => img.getAttribute('src') !== src", arg=[image, first_src])
        assert page.locator(".jp-OutputArea-output img.widget-image").count() == 1  # one image widget
        password = page.wait_for_selector(".jp-OutputArea-output .widget-text input[type=password]")
        assert password.input_value() == ""
        doctor = page.wait_for_selector(".jp-OutputArea-output table.toolkit-doctor")
        text = doctor.inner_text()
        assert "Jupyter kernel, ipywidgets" in text and "answers at http://127.0.0.1:" in text, text
        page.wait_for_selector(".jp-OutputArea-output button.widget-button:has-text('Preview plan')")
        apply = page.wait_for_selector(".jp-OutputArea-output button.widget-button:has-text('Apply')")
        assert apply.is_disabled()  # nothing to apply before a plan was previewed
        assert page.locator(".jp-OutputArea-output .widget-select-multiple option").count() > 0

    try:
        run = run_notebook(browser, lab, "widget_smoke.ipynb", timeout_s=120, inspect=inspect)
    finally:
        lab.shutdown_kernels()
    TIMINGS["widget_smoke.ipynb"] = run.seconds
    problems = problems_of(run, forbidden)
    assert not problems, f"widget smoke notebook (screenshot {run.screenshot}):\n  " + "\n  ".join(problems)


@pytest.mark.browser
@pytest.mark.timeout(300)
def test_the_check_finds_a_widget_as_text_a_raw_cpr_and_an_error(tmp_path: Path, lab: Lab, browser: Any,
                                                                 forbidden: list[str]) -> None:
    """The notebook check can fail: JupyterLab without the widget front end shows ``VBox(...)``; a printed raw
    CPR, a printed secret and an exception are each reported, masked, with their cell."""
    import nbformat

    cpr = next(v for v in forbidden if re.fullmatch(r"\d{10}", v))
    secret = next(v for v in forbidden if not v.replace("-", "").isdigit())
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in [
        "import ipywidgets\nipywidgets.VBox([ipywidgets.Button(description='x')])",
        f"print('student', ''.join({list(cpr)!r}))\nprint('secret', ''.join({list(secret)!r}))",
        "raise KeyError('no such column')",
    ]]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    with jupyterlab(tmp_path, without_widgets=True) as bare:
        nbformat.write(nb, bare.root / "broken.ipynb")
        try:
            run = run_notebook(browser, bare, "broken.ipynb", timeout_s=120)
        finally:
            bare.shutdown_kernels()
    problems = problems_of(run, forbidden)
    report = "\n".join(problems)
    assert any(p.startswith("cell 0") and "widget rendered as text" in p and "VBox(" in p for p in problems), report
    assert any(cpr[:6] + "-**** (raw) visible on the page (cell 1)" in p for p in problems), report
    assert any(secret[:2] + "*** (raw) visible on the page (cell 1)" in p for p in problems), report
    assert any(p.startswith("cell 2") and "KeyError" in p for p in problems), report
    assert cpr not in report and secret not in report  # the failure message itself is masked


@pytest.mark.parametrize("ci", ["true", ""])
def test_a_missing_browser_fails_under_ci_and_is_skipped_with_its_reason_elsewhere(
        ci: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from . import browser_helpers

    monkeypatch.setattr(browser_helpers, "CHROMIUM", str(tmp_path / "no-chromium"))
    monkeypatch.setenv("CI", ci)
    expected = pytest.fail.Exception if ci else pytest.skip.Exception
    with pytest.warns(pytest.PytestWarning) if not ci else contextlib.nullcontext():
        with pytest.raises(expected) as raised:
            browser_helpers.browser_or_skip()
    message = str(raised.value)
    assert "no-chromium is missing" in message and "apt-get install chromium" in message, message
    assert ("CI=true" in message) == bool(ci)


@pytest.mark.browser
@pytest.mark.timeout(300)
def test_the_check_reads_text_fields(lab: Lab, browser: Any, forbidden: list[str]) -> None:
    """A secret in a rendered text field is on screen too (``inner_text`` leaves input values out)."""
    import nbformat

    secret = next(v for v in forbidden if not v.replace("-", "").isdigit())
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import ipywidgets\n"
                                          f"ipywidgets.Text(value=''.join({list(secret[::-1])!r})[::-1])")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, lab.root / "field.ipynb")
    try:
        run = run_notebook(browser, lab, "field.ipynb", timeout_s=120)
    finally:
        lab.shutdown_kernels()
    problems = problems_of(run, forbidden)
    assert not any("widget rendered as text" in p for p in problems), problems  # a real text field
    assert any(secret[:2] + "*** (raw) visible on the page (cell 0)" in p for p in problems), problems
    assert secret not in "\n".join(problems)  # the failure message itself is masked


@pytest.mark.browser
@pytest.mark.timeout(300)
def test_the_layout_check_finds_squeezed_columns_a_dtype_footer_and_a_wrapped_bar(lab: Lab, browser: Any) -> None:
    """The layout check can fail: pandas' own Series display (no toolkit imported), a table whose columns are
    squeezed below their headers, and tqdm's own widget with long counts at 1000 px are each reported."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in [
        "import pandas as pd\npd.Series([6, 2], index=['uploaded', 'failed'], name='count')",
        "from IPython.display import HTML\n"
        "HTML('<style>.squeezed td, .squeezed th {word-break: break-all}</style><table class=\"squeezed\" "
        "style=\"width: 40px\"><thead><tr><th>reason</th><th>message</th></tr></thead><tbody><tr>"
        "<td>not sent: a hidden file</td><td>Could not upload the image</td></tr></tbody></table>')",
        "from tqdm.notebook import tqdm\nbar = tqdm(total=40, desc='Mediaflow: upload files', dynamic_ncols=True)\n"
        "bar.update(40)\nbar.set_postfix_str('already_uploaded 6, failed 2, uploaded 32, limit 12')\nbar.close()",
    ]]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, lab.root / "squeezed.ipynb")
    try:
        run = run_notebook(browser, lab, "squeezed.ipynb", timeout_s=120, widths=LAYOUT_WIDTHS)
    finally:
        lab.shutdown_kernels()
    found = "\n".join(run.layout.get(1600, []) + run.layout.get(1000, []))
    assert "cell 0: a Series shown with its dtype footer (Name: count, dtype: int64" in found, found
    assert 'cell 1: column "reason" is' in found and 'cell 1: header "message" is broken over' in found, found
    assert "cell 1: cell text" in found and "lines of a few letters" in found, found
    assert "at 1000 px: cell 2: progress counts wrap to another row than the bar" in found, found
    assert "at 1600 px: cell 2" not in found, found  # wide enough for tqdm's own widget too
