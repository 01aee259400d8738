"""Safe ad-hoc edits of Dokus items: diff → plan → apply.

    original = dk.products.list(product_number="BOK-")
    edited = original.copy()
    edited["price"] = edited["price"] * Decimal("1.05")          # +5 %
    plan = dk.products.diff(original, edited)                      # one row per changed field; nothing sent
    results = dk.products.apply(plan)                              # one row per product

The plan (``id, field, old, new, action, message, note, row, seen_modified``):

* a changed cell of an existing row → ``update`` (only changed fields are ever sent);
* a row whose id is empty (``pd.NA``) or is not a number read from Dokus (e.g. ``edited.loc["new 2"] = {...}``)
  → ``create``, one plan row per given field; ``row`` keeps the analyst's label (``"new 2"``; ``"new N"`` only
  for an empty label), in the plan and in apply's results, and a label used twice is refused;
* a row of ``original`` missing from ``edited`` → ``delete`` only with ``allow_delete=True`` (otherwise it is
  left alone: you may edit a filtered part of the table);
* a value that fails the checks made before sending → ``invalid`` (that item is not sent at all);
* a changed read-only column (``modification_time``, ``creation_by_id``, ``default_vat_class_name`` …) is
  refused: :class:`toolkit.ValidationError` names it and says which column to edit instead.

Money: amounts are :class:`~decimal.Decimal`, compared exactly and sent as strings with two decimals. When
a pandas operation produced more decimals (``199.50 * 1.05 = 209.4750``), the plan rounds **half up to
whole øre** (``209.48``) and says so in ``message``; a float that reached the table is read from its
shortest repr (``0.1``, never ``0.1000000000000000055…``) and rounded the same way, so what the plan shows
is exactly what is sent. Text is read by :func:`toolkit.dokus.values.parse_money`: ambiguous (``"1,500"``),
exponent (``"1e3"``), NaN/inf and too large forms are ``invalid`` with what to write; a negative amount is
planned with ``note="negative price"``, and apply sends a negative amount only when its plan row says so.

Apply (``id, action, outcome, message, fields, row`` — ``row`` is the plan's row label, e.g. ``"new 1"``; outcomes ``updated``, ``created``, ``deleted``,
``conflict``, ``invalid``, ``failed``; with ``dry_run=True`` ``would update`` / ``would create`` /
``would delete`` and nothing is changed):

* before an update or delete the item is read again; if its ``modification_time`` moved since
  ``original`` was read, or a field to change no longer has the value you saw, the row is a ``conflict``
  and nothing is sent (read again, redo your edit on the fresh table, diff and apply). Dokus times have
  whole seconds: two changes by others within the second you read are caught only through the fields.
* a create first looks for an item with the same natural key (``product_number``): if one exists the row is
  a ``conflict``. A create is never sent twice: when its answer is lost (timeout, dropped connection) the
  client looks the item up by that key to learn whether it was made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

import pandas as pd

from ..core.bulk import check_concurrency, run_bulk
from ..core.errors import NotFound, ToolkitError, TransportError, ValidationError
from ..core.frames import ToolkitFrame, frame
from ..core.redact import redact
from .values import MONEY_STEP, NEGATIVE_NOTE, TIME_FORMAT, FieldSpec, check, equal, is_blank, \
    is_missing, is_negative_money, keep_zeros, normalize, round_money, same, to_wire
from .values import BadValue as _Bad
from .values import as_id as _as_id
from .values import plain as _plain
from .values import read_only_message as _read_only_message
from .values import stamp as _stamp


class EditableSpec(FieldSpec, Protocol):
    """What a plan needs to know of a resource beyond its values (a ``ResourceSpec`` has it)."""

    natural_key: str | None

    def wire_field(self, column: str) -> str: ...

    def column_for(self, name: str) -> str: ...

    def is_editable(self, column: str) -> bool: ...


class RawResource(Protocol):
    """The public raw API of a resource that :func:`apply` works through (``toolkit.dokus.Resource`` has it)."""

    spec: EditableSpec

    def flatten(self, record: Mapping[str, Any]) -> dict[str, Any]: ...

    async def raw_get(self, id: Any) -> dict: ...

    async def raw_create(self, body: Mapping[str, Any]) -> dict: ...

    async def raw_update(self, id: Any, body: Mapping[str, Any]) -> dict: ...

    async def raw_delete(self, id: Any) -> None: ...

    async def raw_find_by(self, column: str, value: Any) -> list[dict]: ...


__all__ = ["diff", "apply", "round_money", "PLAN_SCHEMA", "RESULT_SCHEMA", "OUTCOMES", "fields_to_body",
           "RawResource", "EditableSpec", "MONEY_STEP", "TIME_FORMAT"]

PLAN_SCHEMA = {"id": "Int64", "field": "string", "old": "object", "new": "object", "action": "string",
               "message": "string", "note": "string", "row": "string", "seen_modified": "string"}
RESULT_SCHEMA = {"id": "Int64", "action": "string", "outcome": "string", "message": "string", "fields": "string",
                 "row": "string"}
OUTCOMES = ("updated", "created", "deleted", "conflict", "invalid", "failed")


def fields_to_body(spec: EditableSpec, fields: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
    """Keyword arguments of ``create``/``update`` → the JSON body, checked; ValidationError lists every problem.

    Amounts must already have at most two decimals here (``round_money`` rounds them): nothing unexpected
    is sent without a plan showing it."""
    errors: dict[str, list[str]] = {}
    body: dict[str, Any] = {}
    for name, raw in fields.items():
        column = spec.column_for(name)
        if not spec.is_editable(column):
            errors[name] = [_read_only_message(spec, column)]
            continue
        if column in spec.list_relations.get(spec.wire_field(column), {}).values() and isinstance(raw, (list, tuple)):
            raw = [m.get("id") if isinstance(m, Mapping) else m for m in raw]
        try:
            value, note = normalize(spec, column, raw)
        except _Bad as exc:
            errors[name] = [str(exc)]
            continue
        if note and column in spec.money:
            errors[name] = [f"{raw!r} has more than two decimals: round it first (toolkit.dokus.round_money)"]
            continue
        if is_negative_money(spec, column, value):
            errors[name] = [f"{raw!r} is a {NEGATIVE_NOTE}: it is sent only through a plan that marks it, so "
                            f"the sign is seen before sending (dk.{spec.name}.diff(original, edited), then apply)"]
            continue
        problem = check(spec, column, value, creating=creating)
        if problem:
            errors[name] = [problem]
            continue
        body[spec.wire_field(column)] = to_wire(spec, column, value)
    if creating:
        for column in spec.required:
            if spec.wire_field(column) not in body and column not in errors and spec.wire_field(column) not in errors:
                errors[column] = [f"{column} is required for a new {spec.label}"]
    if errors:
        raise ValidationError(f"the {spec.label} was not sent: some values are not valid", errors=errors,
                              service="dokus")
    return body


# -- diff -------------------------------------------------------------------------------------------------
def _indexed(df: pd.DataFrame, what: str) -> tuple[pd.DataFrame, list[int | None]]:
    """The table indexed by its rows, and each row's Dokus id (None for a new row). Header names are
    stripped of spaces, and an edited table's rows without an id and without any value (a sheet's empty
    lines) are dropped."""
    if not isinstance(df, pd.DataFrame):
        raise ValidationError(f"{what} must be a DataFrame (as returned by list())", service="dokus")
    table = pd.DataFrame(df)
    table.columns = [c.strip() if isinstance(c, str) else c for c in table.columns]
    if "id" in table.columns:
        table = table.set_index("id")
    elif what == "edited" and table.index.name is None and isinstance(table.index, pd.RangeIndex) and len(table):
        raise ValidationError("the edited table has no id column, so its rows cannot be matched to Dokus items "
                              "(its row numbers 0, 1, 2 … may be ids of other items)", service="dokus",
                              hint="Keep the id column as exported (an empty id is a new item), or index the "
                                   "table by id as list() does.")
    ids = [_as_id(label) for label in table.index]
    if what == "edited" and len(table):
        blank = table.apply(lambda col: col.map(is_blank)).all(axis=1).tolist()
        keep = [not (b and i is None) for b, i in zip(blank, ids)]
        table, ids = table[keep], [i for i, k in zip(ids, keep) if k]
    return table, ids


def diff(spec: EditableSpec, original: pd.DataFrame, edited: pd.DataFrame, *,
         allow_delete: bool = False) -> ToolkitFrame:
    """The plan of changes from ``original`` to ``edited`` (see the module docstring). Nothing is sent."""
    orig, orig_ids = _indexed(original, "original")
    if any(i is None for i in orig_ids):
        raise ValidationError("every row of the original table needs its Dokus id", service="dokus",
                              hint=f"Pass the table exactly as dk.{spec.name}.list() returned it.")
    orig.index = pd.Index(orig_ids, dtype=object)
    if orig.index.duplicated().any():
        raise ValidationError("the original table has the same id more than once", service="dokus",
                              hint=f"Pass the table exactly as dk.{spec.name}.list() returned it.")
    ed, ed_ids = _indexed(edited, "edited")
    known = set(orig_ids)
    seen_ids = [i for i in ed_ids if i is not None and i in known]
    dupes = sorted({i for i in seen_ids if seen_ids.count(i) > 1})
    if dupes:
        raise ValidationError(f"the edited table has id(s) {', '.join(map(str, dupes[:10]))} more than once",
                              service="dokus",
                              hint="Give new rows an empty id (pd.NA) or a label such as 'new 1', not a number "
                                   "(pd.concat gives 0, 1, …, which may be ids of existing items).")
    labels = _new_labels(ed, ed_ids, known)
    has_stamp = "modification_time" in orig.columns
    rows: list[dict[str, Any]] = []
    refused: dict[str, list[str]] = {}
    for pos, item_id in enumerate(ed_ids):
        row = ed.iloc[pos]
        if item_id is None or item_id not in known:
            rows.extend(_create_rows(spec, row, labels[pos]))
            continue
        base = orig.loc[item_id]
        if not has_stamp:
            raise ValidationError("the original table has no modification_time column, so changes made on Dokus "
                                  "since you read it could not be detected", service="dokus",
                                  hint=f"Pass the table exactly as dk.{spec.name}.list() returned it.")
        rows.extend(_update_rows(spec, item_id, base, row, orig.columns, refused))
    removed = [i for i in orig.index if i not in set(ed_ids)]
    if allow_delete:
        for item_id in removed:
            base = orig.loc[item_id]
            label = base.get("name") if "name" in orig.columns else None
            rows.append(_plan_row(item_id, None, _plain(label) if not is_missing(label) else None, None, "delete",
                                  "removed from the edited table", _stamp(base.get("modification_time"))))
    if refused:
        errors = {c: msgs[:3] + ([f"… and {len(msgs) - 3} more rows"] if len(msgs) > 3 else [])
                  for c, msgs in refused.items()}
        raise ValidationError("these columns cannot be changed, so no plan was made", errors=errors,
                              service="dokus",
                              hint="Undo the changes to these columns (or drop the columns from the edited table) "
                                   "and make the plan again.")
    plan = frame(rows, PLAN_SCHEMA, kind=frame_kind(spec.name), service="dokus")
    plan.attrs["resource"] = spec.name
    counts = pd.Series([r["action"] for r in rows], dtype=object).value_counts().to_dict() if rows else {}
    summary = ", ".join(f"{k} {v}" for k, v in counts.items()) or "no changes"
    if removed and not allow_delete:
        summary += (f"; {len(removed)} row(s) of the original are not in the edited table and are left alone "
                    f"(allow_delete=True deletes them)")
    plan.attrs["summary"] = f"Dokus {spec.name} plan: {summary}"
    return plan


def _update_rows(spec: EditableSpec, item_id: Any, base: pd.Series, row: pd.Series, known_columns: Any,
                 refused: dict[str, list[str]]) -> list[dict[str, Any]]:
    """The plan rows of one existing item: one per changed column (an edit of a read-only column goes to
    ``refused``, which makes :func:`diff` refuse the whole plan)."""
    rows: list[dict[str, Any]] = []
    seen, stale = _seen(base, row)
    for column in row.index:
        if column in ("id", "modification_time") or (stale and not spec.is_editable(column)):
            continue  # a stale row's read-only columns changed on Dokus, not in the analyst's copy
        try:
            old, _ = normalize(spec, column, base[column]) if column in known_columns else (None, None)
        except _Bad:
            old = _plain(base[column])
        try:
            new, note = normalize(spec, column, row[column])
        except _Bad as exc:
            if not spec.is_editable(column):
                refused.setdefault(column, []).append(f"id {item_id}: {_read_only_message(spec, column)}")
                continue
            rows.append(_plan_row(item_id, column, old, _plain(row[column]), "invalid", str(exc), seen))
            continue
        new = keep_zeros(spec, column, old, new, row[column])
        if equal(spec, column, old, new):
            continue
        if not spec.is_editable(column):
            refused.setdefault(column, []).append(f"id {item_id}: {_read_only_message(spec, column)}")
            continue
        problem = check(spec, column, new, creating=False)
        rows.append(_plan_row(item_id, column, old, new, "invalid" if problem else "update",
                              problem or stale or note or "", seen, note=_note(spec, column, new)))
    return rows


def _seen(base: pd.Series, row: pd.Series) -> tuple[str, str]:
    """The modification time the plan's row keeps for ``apply``'s conflict check, and a warning when the edited
    row carries its own (a sheet of :func:`toolkit.dokus.sheets.write_sheet` does) and it is not the original's:
    the item changed on Dokus after the sheet was read, so ``original`` is newer than what the analyst edited.
    Then the sheet's time is kept, so ``apply`` refuses the row as a ``conflict`` instead of sending the sheet's
    older values over a colleague's change."""
    current = _stamp(base["modification_time"])
    if "modification_time" not in row.index or is_missing(row["modification_time"]) \
            or _same_time(current, row["modification_time"]):
        return current, ""
    theirs = _stamp(row["modification_time"])
    return theirs, (f"changed on Dokus since the sheet was read ({theirs}, now {current}): apply refuses this "
                    f"row as a conflict; export again and redo the edit")


def _new_labels(ed: pd.DataFrame, ids: list[int | None], known: set[int | None]) -> list[str | None]:
    """The analyst's label of each new row ("new 2", "espresso"); "new N" only for an empty label (pd.NA)."""
    labels: list[str | None] = [None] * len(ids)
    given: list[str] = []
    for pos, item_id in enumerate(ids):
        if item_id is None or item_id not in known:
            label = _plain(ed.index[pos])
            text = "" if is_missing(label) else str(label).strip()
            labels[pos] = text or None
            if text:
                given.append(text)
    twice = sorted({t for t in given if given.count(t) > 1})
    if twice:
        raise ValidationError(f"the edited table has the new-row label(s) {', '.join(map(repr, twice[:10]))} more "
                              f"than once", service="dokus",
                              hint="Give each new row its own label (e.g. 'new 1', 'new 2') or an empty id (pd.NA), "
                                   "so each result can be read back by its label.")
    used, count = set(given), 0
    for pos, item_id in enumerate(ids):
        if (item_id is None or item_id not in known) and labels[pos] is None:
            count += 1
            while f"new {count}" in used:
                count += 1
            labels[pos] = f"new {count}"
    return labels


def _note(spec: EditableSpec, column: str | None, value: Any) -> str:
    return NEGATIVE_NOTE if column is not None and is_negative_money(spec, column, value) else ""


def _plan_row(item_id: int | None, column: str | None, old: Any, new: Any, action: str, message: str,
              seen: str, ref: str | None = None, note: str = "") -> dict[str, Any]:
    return {"id": item_id, "field": column, "old": old, "new": new, "action": action, "message": message,
            "note": note, "row": ref or str(item_id), "seen_modified": seen}


def _create_rows(spec: EditableSpec, row: pd.Series, ref: str) -> list[dict[str, Any]]:
    rows = []
    given: set[str] = set()
    for column, raw in row.items():
        column = spec.column_for(str(column))
        if column == "id" or not spec.is_editable(column):
            continue  # e.g. a copied row's modification_time: Dokus sets it
        try:
            value, note = normalize(spec, column, raw)
        except _Bad as exc:
            rows.append(_plan_row(None, column, None, _plain(raw), "invalid", str(exc), "", ref))
            given.add(column)
            continue
        if value is None:
            continue
        given.add(column)
        problem = check(spec, column, value, creating=True)
        rows.append(_plan_row(None, column, None, value, "invalid" if problem else "create", problem or note or "",
                              "", ref, note=_note(spec, column, value)))
    for column in spec.required:
        if column not in given:
            rows.append(_plan_row(None, column, None, None, "invalid",
                                  f"{column} is required for a new {spec.label}", "", ref))
    if spec.natural_key and spec.natural_key not in given and rows:
        rows[0]["message"] = (rows[0]["message"] + "; " if rows[0]["message"] else "") + \
            f"no {spec.natural_key}: if the answer is lost, the toolkit cannot check whether it was created"
    return rows


# -- apply ------------------------------------------------------------------------------------------------
@dataclass
class _Item:
    ref: str
    id: int | None
    action: str
    fields: dict[str, Any] = field(default_factory=dict)
    old: dict[str, Any] = field(default_factory=dict)
    seen: str = ""
    problems: list[str] = field(default_factory=list)


def _items(spec: EditableSpec, plan: pd.DataFrame) -> list[_Item]:
    missing = [c for c in ("id", "field", "new", "action") if c not in plan.columns]
    if missing:
        raise ValidationError(f"this is not a plan made by diff(): it lacks {', '.join(missing)}", service="dokus",
                              hint="Make the plan with dk.products.diff(original, edited).")
    items: dict[str, _Item] = {}
    for rec in plan.to_dict("records"):
        action = str(rec["action"])
        item_id = _as_id(rec.get("id"))
        ref = str(rec["row"]) if "row" in rec and not is_missing(rec["row"]) else str(item_id)
        item = items.get(ref)
        if item is None:
            seen = rec.get("seen_modified")
            item = items[ref] = _Item(ref, item_id, "create" if item_id is None else action,
                                      seen="" if is_missing(seen) else str(seen))
        column = None if is_missing(rec.get("field")) else str(rec["field"])
        if action == "invalid":
            item.problems.append(f"{column}: {rec.get('message') or 'not valid'}" if column else
                                 str(rec.get("message")))
            continue
        if action == "delete":
            item.action = "delete"
            continue
        if action not in ("update", "create"):
            raise ValidationError(f"unknown action {action!r} in the plan", service="dokus")
        if column is not None:
            value = None if is_missing(rec.get("new")) else _plain(rec.get("new"))
            if column in spec.money:  # the same rules as diff: a plan changed by hand is checked again
                try:
                    value, _ = normalize(spec, column, value)
                except _Bad as exc:
                    item.problems.append(f"{column}: {exc}")
                    continue
                note = "" if "note" not in rec or is_missing(rec.get("note")) else str(rec["note"])
                if is_negative_money(spec, column, value) and NEGATIVE_NOTE not in note:
                    item.problems.append(f"{column}: {value} is a {NEGATIVE_NOTE} the plan does not mark (its note "
                                         f"column does not say '{NEGATIVE_NOTE}'): make the plan again with diff()")
                    continue
            item.fields[column] = value
            item.old[column] = None if "old" not in rec or is_missing(rec.get("old")) else _plain(rec.get("old"))
    return list(items.values())


def _same_time(a: str, b: Any) -> bool:
    if is_missing(b) or not a:
        return not a and is_missing(b)
    try:
        return pd.Timestamp(a) == pd.Timestamp(str(b))
    except (TypeError, ValueError):
        return a.strip() == str(b).strip()


def _result(item: _Item, outcome: str, message: str, fields: list[str] | None = None,
            item_id: int | None = None) -> dict[str, Any]:
    return {"id": item_id if item_id is not None else item.id, "action": item.action, "outcome": outcome,
            "message": redact(message), "fields": ", ".join(fields if fields is not None else item.fields),
            "row": item.ref}


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, ValidationError) and exc.errors:
        return "; ".join(f"{k}: {', '.join(v)}" for k, v in exc.errors.items())
    if isinstance(exc, ToolkitError):
        return exc.message + (f" (HTTP {exc.status})" if exc.status else "")
    return f"{type(exc).__name__}: {exc}"


async def apply(resource: RawResource, plan: pd.DataFrame, *, dry_run: bool = False,
                concurrency: "int | str" = "auto", progress: bool = True) -> ToolkitFrame:
    """Send a plan made by :func:`diff`; one result row per item, in plan order (see the module docstring).
    ``concurrency``: ``"auto"`` (as many at once as Dokus takes; see :mod:`toolkit.core.limits`) or 1 to 64."""
    concurrency = check_concurrency(concurrency, "dokus", default=4)
    spec = resource.spec
    owner = plan.attrs.get("resource") if hasattr(plan, "attrs") else None
    if owner and owner != spec.name:
        raise ValidationError(f"this plan was made for {owner}, not {spec.name}", service="dokus",
                              hint=f"Apply it with dk.{owner}.apply(plan).")
    items = _items(spec, plan)

    async def work(item: _Item) -> dict[str, Any]:
        if item.problems:
            return _result(item, "invalid", "not sent: " + "; ".join(item.problems), [])
        if item.action == "update":
            return await _apply_update(resource, item, dry_run)
        if item.action == "create":
            return await _apply_create(resource, item, dry_run)
        return await _apply_delete(resource, item, dry_run)

    outcome = await run_bulk(
        items, work, service="dokus", desc=f"{'dry run of ' if dry_run else ''}changes to {spec.name}",
        concurrency=concurrency,
        on_error=lambda item, exc: _result(item, "failed", _error_text(exc)),
        on_deferred=lambda item: _result(item, "failed", "not attempted after repeated failures: apply the plan "
                                                         "again later (rows already done show as conflicts)"),
        summary_labels=OUTCOMES, progress=progress)
    df = frame(outcome.rows, RESULT_SCHEMA, summary=outcome.summary, kind=frame_kind(spec.name), service="dokus")
    df.attrs["resource"] = spec.name
    return df


def frame_kind(resource: str) -> str:
    """The vocabulary kind of a Dokus frame (docs/vocabulary.md): ``products`` for products, else ``records``."""
    return "products" if resource == "products" else "records"


def _differences(spec: EditableSpec, current: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    out = []
    for column, value in wanted.items():
        try:
            now, _ = normalize(spec, column, current.get(column))
        except _Bad:
            now = current.get(column)
        if not same(now, value):
            out.append(column)
    return out


async def _apply_update(resource: RawResource, item: _Item, dry_run: bool) -> dict[str, Any]:
    spec = resource.spec
    try:
        raw = await resource.raw_get(item.id)
    except NotFound:
        return _result(item, "conflict", f"the {spec.label} was deleted on Dokus after you read it; nothing sent")
    current = resource.flatten(raw)
    moved = not _same_time(item.seen, current.get("modification_time"))
    changed_fields = _differences(spec, current, item.old)
    if moved or changed_fields:
        if not _differences(spec, current, item.fields):
            return _result(item, "updated", "Dokus already has these values; nothing sent", [])
        who = current.get("modification_by_name") or "someone"
        detail = f" ({', '.join(changed_fields)} changed)" if changed_fields else ""
        return _result(item, "conflict",
                       f"changed on Dokus by {who} at {current.get('modification_time')}{detail} after you read it "
                       f"(at {item.seen or '?'}); nothing sent. Read it again, redo your edit and make a new plan.")
    body = {spec.wire_field(c): to_wire(spec, c, v) for c, v in item.fields.items()}
    if dry_run:
        return _result(item, "would update", "dry run: nothing sent")
    try:
        await resource.raw_update(item.id, body)
    except ValidationError as exc:
        return _result(item, "invalid", "Dokus refused the values: " + _error_text(exc))
    except TransportError as exc:
        try:
            after = resource.flatten(await resource.raw_get(item.id))
        except ToolkitError:
            return _result(item, "failed", f"{_error_text(exc)}; could not check whether the change was made")
        if not _differences(spec, after, item.fields):
            return _result(item, "updated", "the answer was lost, but Dokus has the new values (checked)")
        return _result(item, "failed", f"{_error_text(exc)}; Dokus does not have the new values (checked)")
    return _result(item, "updated", "")


async def _lookup(resource: RawResource, item: _Item) -> tuple[str | None, list[dict]]:
    key = resource.spec.natural_key
    if not key or item.fields.get(key) in (None, ""):
        return None, []
    return key, await resource.raw_find_by(key, item.fields[key])


async def _apply_create(resource: RawResource, item: _Item, dry_run: bool) -> dict[str, Any]:
    spec = resource.spec
    key, existing = await _lookup(resource, item)
    if existing:
        ids = ", ".join(str(r.get("id")) for r in existing)
        return _result(item, "conflict", f"a {spec.label} with {key} {item.fields[key]} already exists on Dokus "
                                         f"(id {ids}); nothing sent", item_id=_as_id(existing[0].get("id")))
    body = {spec.wire_field(c): to_wire(spec, c, v) for c, v in item.fields.items()}
    if dry_run:
        return _result(item, "would create", "dry run: nothing sent")
    try:
        created = await resource.raw_create(body)
    except ValidationError as exc:
        return _result(item, "invalid", "Dokus refused the values: " + _error_text(exc))
    except TransportError as exc:
        # never send a create again blindly: look it up to learn whether it was made
        if key is None:
            return _result(item, "failed", f"{_error_text(exc)}; it may or may not have been created (no "
                                           f"{spec.natural_key or 'key'} to look it up): check "
                                           f"dk.{spec.name}.list() before applying again")
        try:
            _, found = await _lookup(resource, item)
        except ToolkitError:
            return _result(item, "failed", f"{_error_text(exc)}; could not look it up either: check "
                                           f"dk.{spec.name}.list({key}=...) before applying again")
        if found:
            return _result(item, "created", f"the answer was lost; found on Dokus by {key} "
                                            f"{item.fields[key]} (not sent again)", item_id=_as_id(found[0].get("id")))
        return _result(item, "failed", f"{_error_text(exc)}; no {spec.label} with {key} {item.fields[key]} on Dokus "
                                       f"yet. It may still be in progress: list again before applying again")
    return _result(item, "created", "", item_id=_as_id(created.get("id")))


async def _apply_delete(resource: RawResource, item: _Item, dry_run: bool) -> dict[str, Any]:
    spec = resource.spec
    try:
        current = resource.flatten(await resource.raw_get(item.id))
    except NotFound:
        return _result(item, "deleted", "already gone from Dokus; nothing sent")
    if item.seen and not _same_time(item.seen, current.get("modification_time")):
        return _result(item, "conflict", f"changed on Dokus at {current.get('modification_time')} after you read it; "
                                         f"not deleted. Read it again and decide.")
    if dry_run:
        return _result(item, "would delete", "dry run: nothing sent")
    try:
        await resource.raw_delete(item.id)
    except NotFound:
        return _result(item, "deleted", "already gone from Dokus")
    except TransportError as exc:
        try:
            await resource.raw_get(item.id)
        except NotFound:
            return _result(item, "deleted", "the answer was lost, but it is gone from Dokus (checked)")
        except ToolkitError:
            pass
        return _result(item, "failed", f"{_error_text(exc)}; check dk.{spec.name}.get({item.id})")
    return _result(item, "deleted", "")
