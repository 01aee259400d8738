"""The product editor widget, in-process against the sandbox: set values, click, check plan and server."""

from __future__ import annotations

import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import ipywidgets as w
import nbformat
import pytest
from nbclient import NotebookClient

import toolkit
from toolkit.sandbox import Sandbox

from .conftest import assert_clean

pytestmark = pytest.mark.integration


@pytest.fixture
def dks(make_sandbox: Any) -> Sandbox:
    return make_sandbox(services=["dokus"], seed=7)


def test_edit_preview_and_apply(dks: Sandbox) -> None:
    emulator = dks.emulator("dokus")
    dk = toolkit.dokus.connect(**dks.credentials("dokus"))
    editor = toolkit.widgets.product_editor(dk.products)
    assert len(editor.selector.options) == len(emulator.store["products"])
    a, b = (int(i) for i in list(emulator.store["products"])[:2])
    editor.selector.value = (a, b)
    assert set(editor.delete_boxes) == {a, b}
    old_price = Decimal(emulator.record("products", a)["price"])
    # four decimals (three would be ambiguous: "209.505" may be read as 209505): rounded half up to øre
    editor.fields[(a, "price")].value = str(old_price + Decimal("10.0050"))
    editor.delete_boxes[b].value = True
    editor.new_fields["name"].value = "Widgetkaffe"
    editor.new_fields["price"].value = "45,50"
    editor.new_fields["product_number"].value = "W-1"
    editor.add_new.value = True
    assert editor.apply_button.disabled
    editor.preview_button.click()
    plan = editor.plan
    assert plan is not None and not editor.apply_button.disabled
    assert sorted(plan["action"].unique()) == ["create", "delete", "update"]
    upd = plan[plan["action"] == "update"].iloc[0]
    assert upd["id"] == a and upd["new"] == (old_price + Decimal("10.0050")).quantize(Decimal("0.01"),
                                                                                    rounding="ROUND_HALF_UP")
    assert "rounded half up" in editor.plan_view.value
    assert not [r for r in emulator.requests if r.method == "POST"]
    editor.apply_button.click()
    results = editor.results
    assert sorted(results["outcome"]) == ["created", "deleted", "updated"]
    assert "updated" in editor.results_view.value
    assert emulator.record("products", a)["price"] == format(upd["new"], "f")
    assert emulator.record("products", b) is None
    made = [r for r in emulator.records("products") if r["product_number"] == "W-1"]
    assert len(made) == 1 and made[0]["price"] == "45.50"
    assert editor.apply_button.disabled and editor.plan is None
    assert b not in [v for _, v in editor.selector.options]
    assert_clean(editor.widget.children[0].value + editor.results_view.value + editor.message.value,
                 dks.secrets(), "widget")


def test_editing_after_preview_disables_apply_and_errors_are_shown(dks: Sandbox) -> None:
    dk = toolkit.dokus.connect(**dks.credentials("dokus"))
    editor = toolkit.widgets.ProductEditor(dk.products.aio if hasattr(dk.products, "aio") else dk.products)
    pid = editor.selector.options[0][1]
    editor.selector.value = (pid,)
    editor.fields[(pid, "comment")].value = "Ny"
    editor.preview_button.click()
    assert not editor.apply_button.disabled
    editor.fields[(pid, "comment")].value = "Nyere"
    assert editor.apply_button.disabled and editor.plan is None and "again" in editor.message.value
    editor.fields[(pid, "price")].value = "gratis"
    editor.preview_button.click()
    assert editor.plan is not None and "invalid" in editor.plan_view.value
    assert editor.apply_button.disabled  # the product's one valid change goes only with its invalid price
    editor.apply_button.click()
    assert editor.results is None
    assert dks.emulator("dokus").record("products", pid)["comment"] != "Nyere"
    editor.filter_text.value = "kaffe"
    editor.reload_button.click()
    assert 0 < len(editor.selector.options) < len(dks.emulator("dokus").store["products"])


def test_a_plan_with_nothing_valid_offers_no_apply(dks: Sandbox) -> None:
    dk = toolkit.dokus.connect(**dks.credentials("dokus"))
    editor = toolkit.widgets.product_editor(dk.products)
    pid = editor.selector.options[0][1]
    editor.selector.value = (pid,)
    editor.fields[(pid, "price")].value = "1,500"  # ambiguous: refused with what to write
    editor.preview_button.click()
    assert editor.plan is not None and editor.plan["action"].tolist() == ["invalid"]
    assert "1500.00 or 1,50" in editor.plan_view.value
    assert editor.apply_button.disabled
    assert "Press Apply" not in editor.message.value and "nothing" in editor.message.value.lower()
    assert editor.apply() is None and editor.results is None
    assert not [r for r in dks.emulator("dokus").requests if r.method == "POST"]
    editor.fields[(pid, "price")].value = "1 500,00"
    editor.preview_button.click()
    assert not editor.apply_button.disabled and "Press Apply" in editor.message.value


def test_old_plan_leaves_the_screen_after_apply(dks: Sandbox) -> None:
    dk = toolkit.dokus.connect(**dks.credentials("dokus"))
    editor = toolkit.widgets.product_editor(dk.products)
    pid = editor.selector.options[0][1]
    editor.selector.value = (pid,)
    editor.fields[(pid, "comment")].value = "Etter Apply"
    editor.preview_button.click()
    assert "Etter Apply" in editor.plan_view.value
    editor.apply_button.click()
    assert editor.results["outcome"].tolist() == ["updated"]
    assert editor.plan is None and editor.plan_view.value == ""
    assert "updated" in editor.results_view.value and editor.apply_button.disabled


def test_a_stopped_service_is_said_in_plain_words(make_sandbox: Any) -> None:
    sandbox = make_sandbox(services=["dokus"], seed=8)
    dk = toolkit.dokus.connect(**sandbox.credentials("dokus"), timeout=2)
    editor = toolkit.widgets.product_editor(dk.products)
    sandbox.stop()
    editor.reload_button.click()
    text = editor.message.value
    assert "could not reach Dokus" in text and "sandbox" in text and "start" in text


def test_fields_say_what_they_are_and_what_to_type(dks: Sandbox) -> None:
    dk = toolkit.dokus.connect(**dks.credentials("dokus"))
    editor = toolkit.widgets.product_editor(dk.products)
    labels = {column: box.description for column, box in editor.new_fields.items()}
    assert labels == {"product_number": "Product number", "name": "Name", "price": "Price (NOK, excl. VAT)",
                      "default_vat_class_id": "VAT class", "comment": "Comment"}
    texts = {c: box.placeholder for c, box in editor.new_fields.items() if isinstance(box, w.Text)}
    assert set(texts) == {"product_number", "name", "price", "comment"}
    assert "new product" not in texts.values() and len(set(texts.values())) == len(texts)  # one per field
    assert texts["name"] == "e.g. Kaffe 500 g" and all("e.g." in t for t in texts.values())
    pid = editor.selector.options[0][1]
    editor.selector.value = (pid,)
    assert {c: editor.fields[(pid, c)].description for c in labels} == labels  # a chosen product's boxes too


def test_the_vat_class_is_chosen_by_name_and_its_id_is_sent(dks: Sandbox) -> None:
    emulator = dks.emulator("dokus")
    dk = toolkit.dokus.connect(**dks.credentials("dokus"))
    editor = toolkit.widgets.product_editor(dk.products)
    served = {vat["id"]: vat["name"] for vat in emulator.records("vat_classes")}
    assert len(served) >= 3
    listed = dk.vat_classes.list()
    assert dict(zip(listed.index, listed["name"])) == served
    choice = editor.new_fields["default_vat_class_id"]
    assert isinstance(choice, w.Dropdown)
    assert [(name, vid) for name, vid in choice.options if vid is not None] == list((n, i) for i, n in served.items())
    assert choice.value is None  # a new product leaves it to Dokus unless chosen
    pid = editor.selector.options[0][1]
    editor.selector.value = (pid,)
    box = editor.fields[(pid, "default_vat_class_id")]
    stored = emulator.record("products", pid)["default_vat_class"]["id"]
    assert isinstance(box, w.Dropdown) and box.value == stored and box.label == served[stored]
    other = next(vid for vid in served if vid != stored)
    box.label = served[other]  # the analyst picks the name
    choice.label = served[other]
    editor.new_fields["name"].value = "Kaffe 500 g"
    editor.new_fields["price"].value = "49,90"
    editor.new_fields["product_number"].value = "KAF-VAT1"
    editor.add_new.value = True
    editor.preview_button.click()
    vat_rows = editor.plan[editor.plan["field"] == "default_vat_class_id"]
    assert sorted(vat_rows["action"]) == ["create", "update"] and set(vat_rows["new"]) == {other}
    assert f"{served[other]} ({other})" in editor.plan_view.value and "VAT class" in editor.plan_view.value
    editor.apply_button.click()
    assert sorted(editor.results["outcome"]) == ["created", "updated"]
    assert emulator.record("products", pid)["default_vat_class"]["id"] == other
    made = [r for r in emulator.records("products") if r["product_number"] == "KAF-VAT1"]
    assert len(made) == 1 and made[0]["default_vat_class"]["id"] == other
    assert choice.value is None  # the new-product form is emptied after Apply


def test_products_list_the_values_of_their_vat_class(dks: Sandbox) -> None:
    dk = toolkit.dokus.connect(**dks.credentials("dokus"))
    choices = dk.products.choices("default_vat_class_id")
    assert choices.equals(dk.vat_classes.list()) and list(choices.columns[:1]) == ["name"]
    assert dk.products.choices("default_vat_class").equals(choices)  # the field's name works too
    with pytest.raises(toolkit.ValidationError, match="no list of values for 'price'"):
        dk.products.choices("price")


NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "03_dokus_products.ipynb"


def test_notebook_03_is_committed_clean_and_stops_no_sandbox_in_run_all() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.get("outputs") and not c.get("execution_count") for c in code)
    assert "widgets" not in nb.metadata
    assert not [c.source for c in code if ".stop(" in c.source], "Run All must not stop the sandbox"
    assert any("sb.stop()" in c.source for c in nb.cells if c.cell_type == "markdown")


@pytest.mark.notebook
def test_notebook_03_run_all_leaves_the_editor_usable_and_tables_narrow(tmp_path: Path) -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    # after Run All the analyst uses the editor the notebook made: edit, preview, apply
    nb.cells.append(nbformat.v4.new_code_cell(
        "editor.reload()\n"
        "pid = editor.selector.options[0][1]\n"
        "editor.selector.value = (pid,)\n"
        "editor.fields[(pid, 'comment')].value = 'after Run All'\n"
        "editor.preview()\n"
        "print('EDITOR', editor.apply()['outcome'].tolist(), 'could not' in editor.message.value)"))
    before = os.environ.get("TOOLKIT_MODE")
    os.environ["TOOLKIT_MODE"] = "sandbox"
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    finally:
        if before is None:
            os.environ.pop("TOOLKIT_MODE", None)
        else:
            os.environ["TOOLKIT_MODE"] = before
    last = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    assert "EDITOR ['updated'] False" in last, last
    tables = [o["data"]["text/html"] for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if o.get("output_type") == "execute_result" and "<table" in o.get("data", {}).get("text/html", "")]
    assert tables, "the notebook shows no table"
    header = tables[0].split("</tr>")[0]
    assert header.count("<th") <= 6, "the first product table is too wide for the screen"
    plans = [o["data"].get("text/plain", "") for c in nb.cells if c.cell_type == "code" and "texts" in c.source
             for o in c.outputs if o.get("output_type") == "execute_result"]
    assert plans and "negative price" in plans[0] and "invalid" in plans[0]
