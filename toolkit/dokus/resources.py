"""The one resource class of the Dokus client, and the table of resources it serves.

``dk.products``, ``dk.customers``, ``dk.customer_groups``, ``dk.invoices`` (drafts), ``dk.sent_invoices``
(read-only), ``dk.recurring_invoices`` and ``dk.vat_classes`` are all a :class:`Resource`; what differs
(path, envelope keys, columns, relations, editable fields) is one row of :data:`RESOURCES`.

    df = dk.products.list(product_number="BOK-")      # DataFrame indexed by id (filters: substring match)
    dk.products.get(3)                                  # one product as a Series
    dk.products.create(name="Kaffe", price="49.90", product_number="KAF-9", default_vat_class=2)
    dk.products.update(3, price=Decimal("209.48"))      # partial: only these fields are sent
    dk.products.delete(3)
    plan = dk.products.diff(df, edited)                 # nothing sent
    dk.products.apply(plan)                             # one result row per product

Relations come back flattened: ``default_vat_class`` → ``default_vat_class_id`` and
``default_vat_class_name``; ``creation_by`` → ``creation_by_id`` / ``creation_by_name``. On input a
relation is an id (``default_vat_class=2`` or ``default_vat_class_id=2``) or the full object.
Money columns hold :class:`decimal.Decimal` values and are sent back as strings with two decimals.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Protocol

import pandas as pd

from ..core.errors import ValidationError
from ..core.frames import ToolkitFrame, ToolkitSeries, frame, series
from ..core.journal import Journal, destination, state_dir
from ..core.redact import get_logger
from ..core.sync import sync_wrappable
from . import edits
from .specs import RESOURCES, ResourceSpec, flatten
from .values import filter_text, text_key

__all__ = ["ResourceSpec", "RESOURCES", "Resource", "Requester", "flatten"]

log = get_logger("toolkit.dokus")

class Requester(Protocol):
    """What a resource needs of its client: one JSON call (``toolkit.dokus.AsyncClient`` has it)."""

    async def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json: Any = None,
                      idempotent: bool | None = None, what: str) -> Any: ...


@sync_wrappable
class Resource:
    """One Dokus resource (products, customers, …): list, get, create, update, delete, diff, apply.

    Besides the DataFrame API it has a small public *raw* API, JSON in and JSON out, with no checks of
    the values (that is what :mod:`toolkit.dokus.edits` builds on): :meth:`raw_list`, :meth:`raw_get`,
    :meth:`raw_create`, :meth:`raw_update`, :meth:`raw_delete`, :meth:`raw_find_by`, and
    :meth:`flatten` / :meth:`to_frame` to turn the JSON into rows and tables."""

    def __init__(self, client: Requester, spec: ResourceSpec) -> None:
        self._client = client
        self.spec = spec

    # -- frames -----------------------------------------------------------------------------------------
    def flatten(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """One JSON object of this resource → one flat row (relations as ``<field>_id`` / ``<field>_name``)."""
        return flatten(self.spec, record)

    def to_frame(self, records: list[Mapping[str, Any]]) -> ToolkitFrame:
        """JSON objects of this resource → a DataFrame indexed by id with the declared columns."""
        rows = [flatten(self.spec, r) for r in records]
        return frame(rows, self.spec.schema, **self._shape)

    @property
    def _shape(self) -> dict[str, Any]:
        """How a table (``frame``) and one item (``series``, named by its id) of this resource are built."""
        return {"index": "id", "extra": "keep", "kind": edits.frame_kind(self.spec.name), "service": "dokus"}

    @property
    def columns(self) -> list[str]:
        """The declared columns of :meth:`list` (the index ``id`` excluded)."""
        return [c for c in self.spec.schema if c != "id"]

    # -- raw calls (JSON in, JSON out) ------------------------------------------------------------------
    def _refuse_if_read_only(self, doing: str) -> None:
        if self.spec.read_only:
            raise ValidationError(f"cannot {doing}: {self.spec.name.replace('_', ' ')} are read-only",
                                  service="dokus", hint=self.spec.read_only_reason or None)

    def _item_path(self, id: Any, suffix: str = "") -> str:
        return f"{self.spec.path}{_id(id, self.spec)}/{suffix}"

    def _unwrap(self, body: Any, key: str, what: str) -> Any:
        if isinstance(body, Mapping) and key in body:
            return body[key]
        if key == self.spec.item_key and isinstance(body, Mapping) and "id" in body:
            return body
        if key == self.spec.list_key and isinstance(body, list):
            return body
        from ..core.errors import APIError

        raise APIError(f"could not {what}: the answer has no {key!r} field", service="dokus",
                       hint="The service answered in an unexpected shape: check the base URL.")

    async def raw_list(self, filters: Mapping[str, Any] | None = None, *, find: bool = False) -> list[dict]:
        """The JSON objects of a list (``find=True``: through the ``find/`` URL); filters are substring matches."""
        params = _filter_params(self.spec, filters or {})
        path = self.spec.path + ("find/" if find else "")
        what = f"list {self.spec.name.replace('_', ' ')}"
        body = await self._client.request("GET", path, params=params or None, what=what)
        return list(self._unwrap(body, self.spec.list_key, what) or [])

    async def raw_get(self, id: Any) -> dict:
        """One item as Dokus sends it (JSON object); :class:`toolkit.NotFound` when it does not exist."""
        what = f"read {self.spec.label} {id}"
        body = await self._client.request("GET", self._item_path(id), what=what)
        return dict(self._unwrap(body, self.spec.item_key, what))

    async def raw_create(self, body: Mapping[str, Any]) -> dict:
        """POST a JSON body as it is (not checked, never retried); returns the created item's JSON."""
        what = f"create the {self.spec.label}"
        answer = await self._client.request("POST", self.spec.path + "create/", json=dict(body), what=what,
                                            idempotent=False)
        return dict(self._unwrap(answer, self.spec.item_key, what))

    async def raw_update(self, id: Any, body: Mapping[str, Any]) -> dict:
        """POST a partial JSON body as it is (not checked; retried, as sending it twice changes nothing)."""
        what = f"update {self.spec.label} {id}"
        # sending the same fields twice gives the same result, so a lost answer may be retried
        answer = await self._client.request("POST", self._item_path(id), json=dict(body), what=what,
                                            idempotent=True)
        return dict(self._unwrap(answer, self.spec.item_key, what))

    async def raw_delete(self, id: Any) -> None:
        """Delete one item (not retried); :class:`toolkit.NotFound` when it does not exist."""
        await self._client.request("POST", self._item_path(id, "delete/"), what=f"delete {self.spec.label} {id}",
                                   idempotent=False)

    async def raw_find_by(self, column: str, value: Any) -> list[dict]:
        """JSON objects whose ``column`` equals ``value`` exactly (the service's filter is a substring match)."""
        wanted = text_key(value)
        records = await self.raw_list({column: value})
        return [r for r in records if text_key(flatten(self.spec, r).get(column)) == wanted]

    # -- public API -------------------------------------------------------------------------------------
    async def list(self, **filters: Any) -> ToolkitFrame:
        """All items as a DataFrame indexed by id; ``filters`` are substring matches done by Dokus,
        e.g. ``list(name="kaffe")`` or ``list(product_number="BOK-")``."""
        return self.to_frame(await self.raw_list(filters))

    async def choices(self, column: str) -> ToolkitFrame:
        """The values a relation column may hold, as Dokus lists them (id as index, ``name``):
        ``dk.products.choices("default_vat_class_id")`` is ``dk.vat_classes.list()``."""
        target = self.spec.choices.get(self.spec.column_for(column))
        if target is None:
            known = ", ".join(self.spec.choices) or "none"
            raise ValidationError(f"Dokus {self.spec.name} has no list of values for {column!r} (columns with one: "
                                  f"{known})", service="dokus")
        return await Resource(self._client, RESOURCES[target]).list()

    async def find(self, **criteria: Any) -> ToolkitFrame:
        """Like :meth:`list`, through the ``find/`` URL some Dokus clients use."""
        return self.to_frame(await self.raw_list(criteria, find=True))

    async def get(self, id: Any) -> ToolkitSeries:
        """One item as a Series (its name is the id); :class:`toolkit.NotFound` when it does not exist."""
        return series(flatten(self.spec, await self.raw_get(id)), self.spec.schema, **self._shape)

    async def create(self, **fields: Any) -> ToolkitSeries:
        """Create one item; returns it as Dokus stored it. Values are checked before sending."""
        self._refuse_if_read_only(f"create a {self.spec.label}")
        body = edits.fields_to_body(self.spec, fields, creating=True)
        return series(flatten(self.spec, await self.raw_create(body)), self.spec.schema, **self._shape)

    async def update(self, id: Any, **fields: Any) -> ToolkitSeries:
        """Change only the given fields of one item (partial update); returns the updated item."""
        self._refuse_if_read_only(f"update {self.spec.label} {id}")
        body = edits.fields_to_body(self.spec, fields, creating=False)
        if not body:
            raise ValidationError(f"nothing to update for {self.spec.label} {id}: give at least one field",
                                  service="dokus")
        return series(flatten(self.spec, await self.raw_update(id, body)), self.spec.schema, **self._shape)

    async def delete(self, id: Any) -> None:
        """Delete one item (Dokus answers 204); :class:`toolkit.NotFound` when it does not exist."""
        self._refuse_if_read_only(f"delete {self.spec.label} {id}")
        await self.raw_delete(id)

    async def export(self, path: "str | os.PathLike[str]", **filters: Any) -> ToolkitFrame:
        """List the items (``filters`` as in :meth:`list`) and write them to ``path`` (``.xlsx`` or ``.csv``)
        for an analyst to edit; returns the table as read — keep it as the ``original`` of
        ``diff(original, read_sheet(path))``. See :mod:`toolkit.dokus.sheets`."""
        from .sheets import write_sheet  # sheets builds on this module

        table = await self.list(**filters)
        written = write_sheet(table, path, resource=self.spec)
        table.attrs["summary"] = f"Dokus {self.spec.name}: {len(table)} written to {written.name}"
        return table

    def diff(self, original: pd.DataFrame, edited: pd.DataFrame, *, allow_delete: bool = False) -> ToolkitFrame:
        """The plan of changes from ``original`` (as read) to ``edited``: nothing is sent.

        See :func:`toolkit.dokus.edits.diff`."""
        self._refuse_if_read_only(f"plan changes to {self.spec.name.replace('_', ' ')}")
        return edits.diff(self.spec, original, edited, allow_delete=allow_delete)

    async def apply(self, plan: pd.DataFrame, *, dry_run: bool = False, concurrency: "int | str" = "auto",
                    progress: bool = True, journal: "str | os.PathLike[str] | None" = None) -> ToolkitFrame:
        """Send a plan made by :meth:`diff`; one result row per item. See :func:`toolkit.dokus.edits.apply`.

        The run and its result rows are recorded in a journal (default ``dokus-apply.sqlite`` in the toolkit's
        state folder), so ``toolkit.runs()`` lists it ("Dokus apply") next to the other services' bulk work.
        """
        self._refuse_if_read_only(f"apply changes to {self.spec.name.replace('_', ' ')}")
        if dry_run:
            return await edits.apply(self, plan, dry_run=True, concurrency=concurrency, progress=progress)
        book = _history(journal)
        dest = destination("dokus", str(getattr(self._client, "base_url", "")),
                           user=getattr(self._client, "email", None), resource=self.spec.name)
        run_id = book.start_run("dokus", dest, "Dokus apply", len(plan)) if book is not None else None
        try:
            result = await edits.apply(self, plan, dry_run=False, concurrency=concurrency, progress=progress)
            if book is not None and run_id is not None:
                rows = result.reset_index(drop=True).astype(object)
                rows = rows.where(rows.notna(), None).to_dict("records")
                book.end_run(run_id, result["outcome"].value_counts().to_dict(), result.attrs.get("summary", ""),
                             rows)
            return result
        finally:
            if book is not None:
                book.close()

    def __repr__(self) -> str:
        return f"<Dokus {self.spec.name} at {self.spec.path}{' (read-only)' if self.spec.read_only else ''}>"


def _history(journal: "str | os.PathLike[str] | None") -> Journal | None:
    """The journal that records applied plans; None (and a log line) when it cannot be written: the history
    is a convenience, never a reason not to apply."""
    path = Path(journal).expanduser() if journal else state_dir() / "dokus-apply.sqlite"
    try:
        if not journal:
            path.parent.mkdir(parents=True, exist_ok=True)
        return Journal(path, service="dokus")
    except (ValidationError, OSError) as exc:
        if journal:  # a journal the analyst named must work
            raise
        log.warning("Dokus: the run history could not be written (%s); the plan is applied all the same", exc)
        return None


def _id(value: Any, spec: ResourceSpec) -> int:
    try:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, float) and not value.is_integer():
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{value!r} is not a {spec.label} id: ids are whole numbers", service="dokus",
                              hint=f"Use the index of dk.{spec.name}.list().") from None


def _filter_params(spec: ResourceSpec, filters: Mapping[str, Any]) -> dict[str, str]:
    params: dict[str, str] = {}
    known = set(spec.schema) | set(spec.relations) | set(spec.list_relations)
    for name, value in filters.items():
        if value is None:
            continue
        if name not in known:
            log.debug("Dokus: filter %r is not a known field of %s; sent as given", name, spec.name)
        params[spec.wire_field(name)] = filter_text(value)
    return params
