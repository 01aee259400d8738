"""Product editor for a notebook: choose products, edit fields, preview the plan, apply on confirm.

    editor = toolkit.widgets.product_editor(dk.products)     # shows itself as the last value of a cell

A form (ipywidgets only, so it renders in any current JupyterLab without extensions): pick products in
the list, edit their fields (or tick "delete"), optionally fill in a new product, press **Preview plan** to
see exactly what would be sent, then **Apply** to send it and see one result row per product. Each box is
named by what it holds (:data:`FIELDS`: "Product number", "Price (NOK, excl. VAT)" …) with an example of
what to type; a relation with a list of values is a choice list by name (the VAT class: Dokus's own VAT
classes, read once with ``dk.products.choices("default_vat_class_id")``), and its id is what is sent. The
plan shows a choice as its name and id ("Low VAT (2)"). All the logic is ``dk.products.diff`` / ``dk.products.apply`` (:mod:`toolkit.dokus.edits`); the
widget only builds the edited table from the boxes. Editing anything after a preview disables Apply until
you preview again, so what you apply is always what you saw.
"""

from __future__ import annotations

from typing import Any, Mapping

import pandas as pd

from ..core.errors import ToolkitError, TransportError
from ..core.frames import masked_view
from ..core.redact import redact
from ..core.sync import SyncWrapper

__all__ = ["product_editor", "ProductEditor"]

#: each field by what it is, and what to type into it (a field with a list of values is a choice list)
FIELDS = {
    "product_number": ("Product number", "e.g. KAF-1001 (unique)"),
    "name": ("Name", "e.g. Kaffe 500 g"),
    "price": ("Price (NOK, excl. VAT)", "e.g. 49,90"),
    "default_vat_class_id": ("VAT class", ""),
    "comment": ("Comment", "optional, e.g. Fairtrade"),
}
LABELS = {column: label for column, (label, _) in FIELDS.items()}
#: the choice of a new product's relation left to Dokus (nothing is sent for it)
NOT_SET = "(not set: Dokus's default)"
_STYLE = {"description_width": "150px"}


def _sync(resource: Any) -> Any:
    if isinstance(resource, SyncWrapper):
        return resource
    if getattr(type(resource), "_toolkit_sync", False):
        return SyncWrapper(resource)
    return resource


def _text(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return ""
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return str(value)


def _id(value: Any) -> int | None:
    """A relation id as the choice list holds it (``None`` for an empty cell)."""
    text = _text(value)
    return int(float(text)) if text else None


def _choice_options(choices: list[tuple[str, int]], current: int | None, blank: bool) -> list[tuple[str, Any]]:
    options: list[tuple[str, Any]] = [(NOT_SET, None)] if blank or current is None else []
    options += choices
    if current is not None and current not in [value for _, value in choices]:
        options.append((f"id {current} (not in Dokus's list)", current))
    return options


def _choice_name(names: Mapping[int, str], value: Any) -> Any:
    try:
        vid = _id(value)
    except ValueError:  # not an id at all: shown as it is (the plan marks it invalid)
        return value
    return value if vid is None else f"{names.get(vid, 'not in the list')} ({vid})"


def _box_value(box: Any) -> Any:
    """What a box holds for the edited table: a choice's id, or the typed text (``None`` when empty)."""
    if isinstance(box.value, str):
        return box.value.strip() or None
    return box.value


def _changed(box: Any, current: Any) -> bool:
    return box.value != (_text(current) if isinstance(box.value, str) else _id(current))


def _sendable(plan: pd.DataFrame | None) -> int:
    """How many items of a plan would be sent (an item with an invalid value is not sent at all)."""
    if plan is None or plan.empty:
        return 0
    refs = plan["row"].astype(str) if "row" in plan.columns else plan["id"].astype(str)
    bad = set(refs[plan["action"] == "invalid"])
    return len({r for r, action in zip(refs, plan["action"]) if action != "invalid" and r not in bad})


def _problem_text(exc: ToolkitError) -> str:
    if isinstance(exc, TransportError):
        return (f"{exc}\n\nThe editor could not reach Dokus. If you use the sandbox and stopped it (sb.stop()) or "
                f"restarted the kernel, start it again: run the notebook's connect cell (it starts the sandbox) and "
                f"then the editor cell. With the real Dokus, check the network and the subdomain.")
    return str(exc)


def _table(df: pd.DataFrame | None, empty: str) -> str:
    if df is None:
        return ""
    if df.empty:
        return f"<p>{empty}</p>"
    return masked_view(df).to_html(index=False, na_rep="", escape=True)


class ProductEditor:
    """The editor; ``.widget`` is the ipywidgets box (the object displays itself as that box)."""

    def __init__(self, resource: Any, *, filters: Mapping[str, Any] | None = None, max_rows: int = 20) -> None:
        import ipywidgets as w

        self.resource = _sync(resource)
        self.spec = self.resource.spec
        editable = list(self.spec.editable)
        self.columns = [c for c in FIELDS if c in editable] + [c for c in editable if c not in FIELDS]
        #: relation column → its values by name, ``[(name, id), …]`` as Dokus lists them (read on the first reload)
        self.choices: dict[str, list[tuple[str, int]]] = {}
        self.filters = dict(filters or {})
        self.max_rows = max_rows
        self.original: pd.DataFrame = pd.DataFrame()
        self.plan: pd.DataFrame | None = None
        self.results: pd.DataFrame | None = None
        self.fields: dict[tuple[int, str], Any] = {}
        self.delete_boxes: dict[int, Any] = {}

        self.filter_text = w.Text(description="Name has", placeholder="part of the name (empty: all)")
        self.reload_button = w.Button(description="Reload", icon="refresh")
        self.selector = w.SelectMultiple(options=[], rows=8, description="Products",
                                         layout=w.Layout(width="95%"))
        self.rows_box = w.VBox()
        self.new_fields: dict[str, Any] = {}
        self.add_new = w.Checkbox(description="Create this new product", value=False)
        self.preview_button = w.Button(description="Preview plan", button_style="info", icon="eye")
        self.apply_button = w.Button(description="Apply", button_style="danger", icon="check", disabled=True)
        self.message = w.HTML()
        self.plan_view = w.HTML()
        self.results_view = w.HTML()

        self.reload_button.on_click(lambda _: self.reload())
        self.selector.observe(lambda _: self._build_rows(), names="value")
        self.preview_button.on_click(lambda _: self.preview())
        self.apply_button.on_click(lambda _: self.apply())
        self.add_new.observe(self._stale, names="value")

        self.new_box = w.VBox()
        self.widget = w.VBox([
            w.HTML(f"<b>Dokus {self.spec.name}</b>: choose rows, edit, <i>Preview plan</i>, then <i>Apply</i>."),
            w.HBox([self.filter_text, self.reload_button]), self.selector, self.rows_box, self.new_box,
            w.HBox([self.preview_button, self.apply_button]), self.message,
            w.HTML("<b>Plan</b>"), self.plan_view, w.HTML("<b>Results</b>"), self.results_view,
        ])
        self.reload()

    # -- display --------------------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return f"<ProductEditor {self.spec.name}: {len(self.original)} rows, {len(self.selector.value)} chosen>"

    # -- state ----------------------------------------------------------------------------------------
    def _say(self, text: str, error: bool = False) -> None:
        import html

        colour = "#b00020" if error else "#333"
        self.message.value = f"<pre style='color:{colour};white-space:pre-wrap'>{html.escape(redact(text))}</pre>"

    def _stale(self, *_: Any) -> None:
        if self.plan is not None:
            self.plan = None
            self.plan_view.value = ""
            self.apply_button.disabled = True
            self._say("Changed since the preview: press Preview plan again.")

    def _field(self, column: str, value: Any, *, new: bool, **kw: Any) -> Any:
        """The box of one field: a choice list by name for a relation with a list of values, else a text box."""
        import ipywidgets as w

        label, example = FIELDS.get(column, (column.replace("_", " ").capitalize(), ""))
        # the new product's boxes stand in one column (labels aligned); a chosen product's in rows of three
        style = _STYLE if new else {"description_width": "initial"}
        if column in self.choices:
            box = w.Dropdown(options=_choice_options(self.choices[column], _id(value), blank=new),
                             value=_id(value), description=label, style=style, **kw)
        else:
            box = w.Text(value=_text(value), description=label, placeholder=example, style=style, **kw)
        box.observe(self._stale, names="value")
        return box

    def _load_choices(self) -> None:
        """The values of every relation column with a list (the VAT classes by name), read once."""
        wanted = [c for c in getattr(self.spec, "choices", {}) if c in self.columns and c not in self.choices]
        for column in wanted:
            table = self.resource.choices(column)
            self.choices[column] = [(_text(row.get("name")) or f"id {vid}", int(vid)) for vid, row in table.iterrows()]
        if wanted or not self.new_fields:
            import ipywidgets as w

            self.new_fields = {c: self._field(c, None, new=True, layout=w.Layout(width="460px"))
                               for c in self.columns}
            self.new_box.children = [w.HTML("<b>New product</b>"), *self.new_fields.values(), self.add_new]

    def reload(self) -> None:
        """Read the products again (keeps the chosen ids that still exist)."""
        filters = dict(self.filters)
        if self.filter_text.value.strip():
            filters["name"] = self.filter_text.value.strip()
        try:
            self._load_choices()
            self.original = self.resource.list(**filters)
        except ToolkitError as exc:
            self._say(_problem_text(exc), error=True)
            return
        chosen = [i for i in self.selector.value if i in self.original.index]
        options = [(f"{pid} — {_text(row.get('name'))} ({_text(row.get('price'))})", int(pid))
                   for pid, row in self.original.iterrows()]
        self.selector.value = ()
        self.selector.options = options
        self.selector.value = tuple(chosen)
        self._build_rows()
        self._stale()

    def _build_rows(self) -> None:
        import ipywidgets as w

        chosen = list(self.selector.value)[: self.max_rows]
        self.fields, self.delete_boxes = {}, {}
        rows = []
        for pid in chosen:
            current = self.original.loc[pid]
            boxes = []
            for column in self.columns:
                box = self._field(column, current.get(column), new=False, layout=w.Layout(width="auto"))
                self.fields[(pid, column)] = box
                boxes.append(box)
            delete = w.Checkbox(description="delete", value=False, indent=False, layout=w.Layout(width="80px"))
            delete.observe(self._stale, names="value")
            self.delete_boxes[pid] = delete
            rows.append(w.VBox([w.HTML(f"<b>#{pid}</b>"), w.HBox(boxes[:3]), w.HBox([*boxes[3:], delete])]))
        if len(self.selector.value) > self.max_rows:
            rows.append(w.HTML(f"<i>Only the first {self.max_rows} chosen rows are shown.</i>"))
        self.rows_box.children = rows
        self._stale()

    # -- the edited table -----------------------------------------------------------------------------
    def edited(self) -> tuple[pd.DataFrame, bool]:
        """The edited table built from the boxes, and whether it deletes rows."""
        edited = self.original.astype(object).copy()
        for (pid, column), box in self.fields.items():
            if _changed(box, self.original.loc[pid].get(column)):
                edited.at[pid, column] = _box_value(box)
        deleting = [pid for pid, box in self.delete_boxes.items() if box.value]
        edited = edited.drop(index=deleting)
        if self.add_new.value:
            new = {c: _box_value(box) for c, box in self.new_fields.items()}
            edited = pd.concat([edited, pd.DataFrame([new], index=pd.Index(["new 1"], name=edited.index.name))])
        return edited, bool(deleting)

    def _named(self, plan: pd.DataFrame) -> pd.DataFrame:
        """The plan as shown: fields by their label, a choice by its name and id ("Low VAT (2)")."""
        if plan.empty or "field" not in plan.columns:
            return plan
        shown = plan.copy()
        for side in ("old", "new", "field"):
            if side in shown.columns:
                shown[side] = shown[side].astype(object)
        for column, choices in self.choices.items():
            names = {vid: name for name, vid in choices}
            rows = shown["field"] == column
            for side in ("old", "new"):
                if side in shown.columns:
                    shown.loc[rows, side] = [_choice_name(names, value) for value in shown.loc[rows, side]]
        shown["field"] = [LABELS.get(str(f), f) for f in shown["field"]]
        return shown

    def preview(self) -> pd.DataFrame | None:
        """Make the plan from the boxes and show it (nothing is sent)."""
        edited, deleting = self.edited()
        try:
            plan = self.resource.diff(self.original, edited, allow_delete=deleting)
        except ToolkitError as exc:
            self.plan, self.apply_button.disabled = None, True
            self.plan_view.value = ""
            self._say(_problem_text(exc), error=True)
            return None
        self.plan = plan
        shown = [c for c in ("row", "id", "field", "old", "new", "action", "message", "note") if c in plan.columns]
        self.plan_view.value = _table(self._named(plan[shown]), "No changes.")
        ready = _sendable(plan)
        self.apply_button.disabled = not ready
        summary = plan.attrs.get("summary", "")
        if ready:
            invalid = plan["action"].eq("invalid").any()
            self._say(f"{summary}\nPress Apply to send exactly this"
                      + (" (the products marked invalid are not sent)." if invalid else "."))
        elif plan.empty:
            self._say(f"{summary}\nNothing to send: change a box (or tick delete, or fill in a new product) first.")
        else:
            self._say(f"{summary}\nNothing in this plan can be sent: correct the values marked invalid (the "
                      f"message column says what to write) and press Preview plan again.", error=True)
        return plan

    def apply(self) -> pd.DataFrame | None:
        """Send the previewed plan; show one result row per product and read the products again."""
        if self.plan is None or self.plan.empty:
            self._say("Nothing to apply: press Preview plan first.", error=True)
            return None
        if not _sendable(self.plan):
            self._say("Nothing in this plan can be sent: correct the values marked invalid and press Preview plan "
                      "again.", error=True)
            return None
        plan, self.plan = self.plan, None
        self.apply_button.disabled = True
        self.plan_view.value = ""  # the plan is done: what counts now is the results
        try:
            results = self.resource.apply(plan, progress=False)
        except ToolkitError as exc:
            self._say(_problem_text(exc), error=True)
            return None
        self.results = results
        self.results_view.value = _table(results, "Nothing was sent.")
        self.add_new.value = False
        for box in self.new_fields.values():
            box.value = "" if isinstance(box.value, str) else None
        self.reload()
        self._say(results.attrs.get("summary", "Done."))
        return results


def product_editor(resource: Any, *, filters: Mapping[str, Any] | None = None, max_rows: int = 20) -> ProductEditor:
    """An editor for ``dk.products`` (see :class:`ProductEditor`)."""
    return ProductEditor(resource, filters=filters, max_rows=max_rows)
