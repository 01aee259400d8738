"""What the toolkit assumes of Dokus, asked of the service: ``dk.check()``, ``toolkit.check("dokus")``,
``toolkit dokus check``. Read-only: the product list (basic auth, its envelope, its paging headers, its
clock), the fields of its first products, and one product by id. The machinery and the columns are
:mod:`toolkit.core.check`'s.

The fields come from the resource table the client is written on (:data:`toolkit.dokus.resources.RESOURCES`):
a column of a relation (``default_vat_class_id`` / ``_name``) is the relation's object on the wire
(``default_vat_class``: ``{id, name}``; an id alone is read too), money is text (a number is read too), the
rest has the kind of its column's dtype.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..core.check import Answer, Checker, Expect, expects_of, records_in
from .client import CREDENTIALS_HINT
from .resources import ResourceSpec

__all__ = ["check", "wire_fields", "RESOURCE"]

SERVICE = "dokus"
#: the resource the check reads (the toolkit's main one: products)
RESOURCE = "products"

LOGIN = "every call carries basic auth with the user's e-mail and password, and Accept: application/json"
LIST = "GET {path} answers an object {{\"{key}\": [...]}} with every {label} (unpaginated)"
ITEM = "GET {path}{{id}}/ answers an object {{\"{key}\": {{...}}}} with the {label}'s fields"
CONSEQUENCE = ("dk.{name}.list() and get() will lack these columns or hold them wrong, and diff/apply compare "
               "them: do not apply plans for {name} until the toolkit reads this shape.")


def wire_fields(spec: ResourceSpec) -> dict[str, Expect]:
    """The fields of one item of ``spec`` as Dokus sends them, in the order of the resource's columns."""
    related = {col: name for name, cols in {**spec.relations, **spec.list_relations}.items() for col in cols.values()}
    plain = expects_of({c: d for c, d in spec.schema.items() if c not in related}, also={"decimal": "number"})
    out: dict[str, Expect] = {}
    for column in spec.schema:
        name = related.get(column)
        if name is None:
            out[column] = plain[column]
        elif name not in out:
            out[name] = Expect.of("list") if name in spec.list_relations else Expect.of("object", also="integer")
    return out


async def check(client: Any) -> Any:
    """The rows of Dokus' contract check (see the module docstring) as a frame."""
    c = Checker(SERVICE)
    return await c.run(_rows(c, client))


async def _rows(c: Checker, client: Any) -> None:
    spec = client.specs[RESOURCE]
    listing = LIST.format(path=spec.path, key=spec.list_key, label=spec.label)
    answer = await c.call("login", LOGIN, client.http, spec.path, allow=(401,), what=f"list {spec.name}")
    names = {"list": f"{spec.label} list", "fields": f"{spec.label} fields", "one": f"one {spec.label}"}
    if answer is None or answer.status == 401:
        if answer is not None:
            c.add("login", LOGIN, "HTTP 401: Dokus did not accept the e-mail and password", "failed", CREDENTIALS_HINT)
        for name, text in ((names["list"], listing), (names["fields"], f"each {spec.label} has its fields"),
                           (names["one"], ITEM.format(path=spec.path, key=spec.item_key, label=spec.label)),
                           ("paging", f"the {spec.name} list comes whole")):
            c.skipped(name, text, f"the {spec.name} could not be listed")
        c.clock(answer)
        return
    c.add("login", LOGIN, f"HTTP {answer.status}: the e-mail and password were accepted", "ok")
    body = answer.json()
    c.envelope(names["list"], listing, body, spec.list_key, copes=isinstance(body, list))
    items = records_in(body, (spec.list_key,))
    expected = wire_fields(spec)
    consequence = CONSEQUENCE.format(name=spec.name)
    if items:
        c.fields(names["fields"], f"each {spec.label}", items[:5], expected, noun=spec.label, consequence=consequence)
        await _one(c, client, spec, items[0], expected, consequence, names["one"])
    else:
        c.note(f"Dokus holds no {spec.name}: their fields and one {spec.label} were not compared")
    c.unpaged("paging", f"The {spec.name} list", answer, body)
    c.clock(answer)


async def _one(c: Checker, client: Any, spec: ResourceSpec, first: Mapping[str, Any], expected: dict[str, Expect],
               consequence: str, name: str) -> None:
    """The row of one item by id: its envelope and its fields."""
    assumption = ITEM.format(path=spec.path, key=spec.item_key, label=spec.label)
    ident = first.get("id")
    if isinstance(ident, bool) or not (isinstance(ident, int) or (isinstance(ident, str) and ident.isdigit())):
        c.skipped(name, assumption, f"the first {spec.label} has no id that is a whole number")
        return
    answer: Answer | None = await c.call(name, assumption, client.http, f"{spec.path}{ident}/",
                                         what=f"read {spec.label} {ident}")
    if answer is None:
        return
    body = answer.json()
    if not (isinstance(body, Mapping) and isinstance(body.get(spec.item_key), Mapping)):
        c.envelope(name, assumption, body, spec.item_key, copes=isinstance(body, Mapping) and "id" in body)
        return
    c.fields(name, f"{assumption}; it", [body[spec.item_key]], expected, noun=spec.label,
             consequence=consequence)
