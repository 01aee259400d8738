"""The table of Dokus resources: one :class:`ResourceSpec` per resource (path, envelope keys, columns,
relations, editable fields) in :data:`RESOURCES`, and :func:`flatten` of one record into a row.

Plain data, below both the resource class (:mod:`toolkit.dokus.resources`) and the spreadsheets
(:mod:`toolkit.dokus.sheets`), so neither imports the other's module to know a resource.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping

__all__ = ["ResourceSpec", "RESOURCES", "flatten"]


_USER = {"id": "{f}_id", "first_name": "{f}_name"}
_REF = {"id": "{f}_id", "name": "{f}_name"}


def _rel(fieldname: str, template: Mapping[str, str]) -> dict[str, str]:
    return {sub: col.format(f=fieldname) for sub, col in template.items()}


_STAMPS = {"creation_time": "datetime", "modification_time": "datetime", "creation_by_id": "Int64",
           "creation_by_name": "string", "modification_by_id": "Int64", "modification_by_name": "string"}
_STAMP_RELATIONS = {"creation_by": _rel("creation_by", _USER), "modification_by": _rel("modification_by", _USER)}


@dataclass(frozen=True)
class ResourceSpec:
    """One row of the resource table: where a resource lives and what its columns are."""

    name: str                                   #: attribute of the client, e.g. "products"
    label: str                                  #: one item in messages, e.g. "product"
    path: str                                   #: base path, e.g. "/products/"
    list_key: str                               #: envelope key of a list, e.g. "products"
    item_key: str                               #: envelope key of one item, e.g. "product"
    schema: Mapping[str, str]                   #: flattened column → dtype ("id" first)
    relations: Mapping[str, Mapping[str, str]] = field(default_factory=dict)       #: field → {key: column}
    list_relations: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  #: e.g. group members
    editable: tuple[str, ...] = ()              #: columns an analyst may change
    money: tuple[str, ...] = ()                 #: Decimal columns sent with two decimals
    required: tuple[str, ...] = ()              #: columns a new item must have
    natural_key: str | None = None              #: column that identifies an item besides its id
    read_only: bool = False                     #: the service refuses every change
    read_only_reason: str = ""
    strict: bool = False                        #: refuse fields the table does not know (documented resources)
    choices: Mapping[str, str] = field(default_factory=dict)  #: relation column → the resource listing its values

    def wire_field(self, column: str) -> str:
        """The JSON field a column is sent as (``default_vat_class_id`` → ``default_vat_class``)."""
        for fieldname, cols in {**self.relations, **self.list_relations}.items():
            if cols.get("id") == column:
                return fieldname
        return column

    def column_for(self, name: str) -> str:
        """The column of a field name given by the analyst (``default_vat_class`` → ``…_id``)."""
        rel = self.relations.get(name) or self.list_relations.get(name)
        return rel["id"] if rel else name

    def is_editable(self, column: str) -> bool:
        if column in self.editable:
            return True
        return not self.strict and column not in self.schema and column != "id"


_INVOICE_SCHEMA = {
    "id": "Int64", "recipient_id": "Int64", "recipient_type": "string", "recipient_name": "string",
    "recipient_email": "string", "recipient_address1": "string", "recipient_contact": "string",
    "recipient_zip_code": "string", "recipient_zip_place": "string", "recipient_country_id": "Int64",
    "description": "string", "sender_ref": "string", "recipient_ref": "string", "send_date": "date",
    "due_days": "Int64", "items": "object",
}
_INVOICE_RELATIONS = {"recipient": {"id": "recipient_id"},
                      "recipient_country": _rel("recipient_country", _REF), **_STAMP_RELATIONS}
_INVOICE_EDITABLE = ("recipient_id", "recipient_type", "recipient_name", "recipient_email", "recipient_address1",
                     "recipient_contact", "recipient_zip_code", "recipient_zip_place", "recipient_country_id",
                     "description", "sender_ref", "recipient_ref", "send_date", "due_days", "items")

_DRAFTS = ResourceSpec(
    name="invoices", label="draft invoice", path="/invoices/", list_key="invoices", item_key="invoice",
    schema={**_INVOICE_SCHEMA, "recipient_country_name": "string", **_STAMPS},
    relations=_INVOICE_RELATIONS, editable=_INVOICE_EDITABLE, required=("recipient_name",),
)

#: the resource table: paths, envelope keys and columns of every resource (api-contracts §5.4)
RESOURCES: dict[str, ResourceSpec] = {
    "products": ResourceSpec(
        name="products", label="product", path="/products/", list_key="products", item_key="product",
        schema={"id": "Int64", "name": "string", "comment": "string", "price": "decimal",
                "product_number": "string", "default_vat_class_id": "Int64", "default_vat_class_name": "string",
                **_STAMPS},
        relations={"default_vat_class": _rel("default_vat_class", _REF), **_STAMP_RELATIONS},
        editable=("name", "comment", "price", "product_number", "default_vat_class_id"),
        money=("price",), required=("name", "price"), natural_key="product_number", strict=True,
        choices={"default_vat_class_id": "vat_classes"},
    ),
    "customers": ResourceSpec(
        name="customers", label="customer", path="/customers/", list_key="customers", item_key="customer",
        schema={"id": "Int64", "name": "string", "email": "string", "org_number": "string", "address1": "string",
                "zip_code": "string", "zip_place": "string", "country_id": "Int64", "country_name": "string",
                **_STAMPS},
        relations={"country": _rel("country", _REF), **_STAMP_RELATIONS},
        editable=("name", "email", "org_number", "address1", "zip_code", "zip_place", "country_id"),
        required=("name",), natural_key="org_number",
    ),
    "customer_groups": ResourceSpec(
        name="customer_groups", label="customer group", path="/customers/groups/", list_key="groups",
        item_key="group",
        schema={"id": "Int64", "name": "string", "members_id": "object", "members_name": "object", **_STAMPS},
        relations=_STAMP_RELATIONS, list_relations={"members": _rel("members", _REF)},
        editable=("name", "members_id"), required=("name",),
    ),
    "invoices": _DRAFTS,
    "recurring_invoices": replace(_DRAFTS, name="recurring_invoices", label="recurring invoice",
                                  path="/invoices/recurring/", list_key="recurring_invoices", item_key="invoice"),
    "sent_invoices": replace(
        _DRAFTS, name="sent_invoices", label="sent invoice", path="/invoices/sent/", list_key="sent_invoices",
        item_key="sent_invoice", editable=(), required=(),
        schema={**_INVOICE_SCHEMA, "invoice_number": "Int64", "sent_date": "date",
                "recipient_country_name": "string", **_STAMPS},
        read_only=True,
        read_only_reason="Sent invoices cannot be changed or deleted in Dokus; to correct one, make a credit note "
                         "in Dokus."),
    "vat_classes": ResourceSpec(
        name="vat_classes", label="VAT class", path="/vat_classes/", list_key="vat_classes", item_key="vat_class",
        schema={"id": "Int64", "name": "string"}, read_only=True,
        read_only_reason="VAT classes are fixed by Dokus: read them, and use their ids in products and invoices."),
}


def flatten(spec: ResourceSpec, record: Mapping[str, Any]) -> dict[str, Any]:
    """One JSON object → one flat row: relations become ``<field>_id`` / ``<field>_name`` columns."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        if key in spec.relations:
            cols = spec.relations[key]
            if isinstance(value, Mapping):
                for sub, col in cols.items():
                    out[col] = value.get(sub)
            else:  # the service gave only the id
                out[cols["id"]] = value
        elif key in spec.list_relations:
            cols = spec.list_relations[key]
            members = list(value or [])
            for sub, col in cols.items():
                out[col] = [m.get(sub) if isinstance(m, Mapping) else (m if sub == "id" else None) for m in members]
        elif isinstance(value, Mapping) and "id" in value and f"{key}_id" not in record:
            out[f"{key}_id"] = value.get("id")
            out[f"{key}_name"] = value.get("name", value.get("first_name"))
        else:
            out[key] = value
    return out
