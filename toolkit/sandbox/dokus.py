"""Dokus emulator: products, customers, customer groups, VAT classes and invoices, on loopback HTTP.

What it implements, as the service's API documentation fixes it:

* Basic auth with the sandbox user's e-mail and password on every request; wrong or missing credentials →
  ``401`` with ``WWW-Authenticate: Basic`` and ``{"detail": "Invalid credentials"}``.
* ``Accept: application/json`` required (``406`` otherwise); create/update need a JSON body.
* ``GET /<resource>/`` → ``{"<plural>": [...]}`` (unpaginated; query parameters are case-insensitive
  substring filters, ``GET /<resource>/find/?…`` does the same); ``GET /<resource>/<id>/`` →
  ``{"<singular>": {...}}``; ``POST /<resource>/create/``; ``POST /<resource>/<id>/`` (partial update:
  fields not sent are kept, read-only and unknown fields are ignored); ``POST /<resource>/<id>/delete/`` →
  ``204``; unknown id → ``404``.
* Invalid values → ``401`` (the documented quirk) with ``{"errors": {"field": ["message", …]}}``.
* Relations are returned as nested objects and accepted as an id or as the full object.
* Money is a string with two decimals (``"199.50"``); times are ``YYYY-MM-DD HH:MM:SS``.
* ``modification_time`` changes on every change: the emulator's clock advances at least one second per
  change, so two changes within the same wall-clock second still get different times.

Test hooks (not part of the service's API): :meth:`DokusEmulator.hold_next` delays the answer of the next
matching request (after it was processed, or before), :meth:`DokusEmulator.change` changes a record as
a colleague would, :meth:`DokusEmulator.record` reads the stored state, ``bodies`` lists the JSON bodies
of creates and updates.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation, ROUND_HALF_UP
from functools import partial
from typing import Any, Callable

from starlette.responses import Response
from starlette.routing import Route

from .server import Emulator

__all__ = ["DokusEmulator"]

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
CENT = Decimal("0.01")

VAT_CLASSES = [(1, "High VAT"), (2, "Low VAT"), (3, "Person transport VAT"), (4, "No VAT")]
COUNTRIES = {1: "Norway", 2: "Sweden", 3: "Denmark"}


@dataclass(frozen=True)
class _Res:
    key: str            # internal store name
    path: str           # base path
    plural: str         # list envelope key
    singular: str       # single envelope key
    writable: bool = True


RESOURCES = [
    _Res("products", "/products/", "products", "product"),
    _Res("groups", "/customers/groups/", "groups", "group"),
    _Res("customers", "/customers/", "customers", "customer"),
    _Res("recurring", "/invoices/recurring/", "recurring_invoices", "invoice"),
    _Res("sent", "/invoices/sent/", "sent_invoices", "sent_invoice", writable=False),
    _Res("invoices", "/invoices/", "invoices", "invoice"),
    _Res("vat_classes", "/vat_classes/", "vat_classes", "vat_class", writable=False),
]

INVOICE_FIELDS: dict[str, tuple[str, bool]] = {
    "recipient": ("customer", False),
    "recipient_type": ("str:20", False),
    "recipient_name": ("str:200", True),
    "recipient_email": ("email", False),
    "recipient_address1": ("str:200", False),
    "recipient_contact": ("str:200", False),
    "recipient_zip_code": ("str:10", False),
    "recipient_zip_place": ("str:100", False),
    "recipient_country": ("country", False),
    "description": ("str:1000", False),
    "sender_ref": ("str:100", False),
    "recipient_ref": ("str:100", False),
    "send_date": ("date", False),
    "due_days": ("int", False),
    "items": ("items", False),
}

#: editable fields of each resource: name → (type, required on create)
FIELDS: dict[str, dict[str, tuple[str, bool]]] = {
    "products": {
        "name": ("str:100", True),
        "comment": ("str:500", False),
        "price": ("money", True),
        "product_number": ("str:50", False),
        "default_vat_class": ("vat_class", False),
    },
    "customers": {
        "name": ("str:200", True),
        "email": ("email", False),
        "org_number": ("orgnr", False),
        "address1": ("str:200", False),
        "zip_code": ("str:10", False),
        "zip_place": ("str:100", False),
        "country": ("country", False),
    },
    "groups": {"name": ("str:100", True), "members": ("customers", False)},
    "invoices": INVOICE_FIELDS,
    "recurring": INVOICE_FIELDS,
    "sent": {},
    "vat_classes": {},
}

DEFAULTS: dict[str, Any] = {"comment": "", "product_number": "", "default_vat_class": 1, "email": "",
                            "org_number": "", "address1": "", "zip_code": "", "zip_place": "", "country": 1,
                            "members": [], "recipient": None, "recipient_type": "customer", "recipient_email": "",
                            "recipient_address1": "", "recipient_contact": "", "recipient_zip_code": "",
                            "recipient_zip_place": "", "recipient_country": 1, "description": "",
                            "sender_ref": "", "recipient_ref": "", "send_date": None, "due_days": 14,
                            "items": []}

USERS = {
    1: {"id": 1, "first_name": "Ole Nordmann", "email": "ole.nordmann@example.no"},
    2: {"id": 2, "first_name": "Analytiker", "email": "analytiker@sandkasse.dokus.test"},
    3: {"id": 3, "first_name": "Kari Kollega", "email": "kari.kollega@example.no"},
}
API_USER = 2
COLLEAGUE = 3

_PRODUCT_NAMES = {
    "BOK": (4, ["Norsk kokebok", "Fjellturer i Jotunheimen", "Historien om Hurtigruten", "Troll i skogen",
                "Strikkeboka", "Nordlys over Tromsø", "Lofoten rundt", "Kystens fyrlykter", "Brød og bakst",
                "Samisk håndverk"]),
    "KAF": (2, ["Kaffe, hele bønner 500 g", "Kaffe, filtermalt 250 g", "Espresso, bønner 1 kg", "Te, Earl Grey",
                "Kakao, 400 g", "Kaffekopp, steintøy", "Termokanne 1 l", "Kaffefilter nr. 4"]),
    "KUR": (1, ["Kurs: Regnskap for nybegynnere", "Kurs: Fakturering i praksis", "Kurs: Merverdiavgift",
                "Kurs: Lønn og arbeidsgiveravgift", "Kurs: Årsoppgjør", "Webinar: Purring og inkasso"]),
    "ABO": (1, ["Abonnement: Nyhetsbrev", "Abonnement: Regnskapstips", "Abonnement: Bransjeblad",
                "Abonnement: Fagtidsskrift"]),
}
_ENDINGS = ["00", "50", "90", "95", "49", "00", "25"]
_FIRST = ["Ola", "Kari", "Per", "Ingrid", "Lars", "Sigrid", "Anders", "Marit", "Nils", "Solveig", "Eirik", "Astrid"]
_LAST = ["Hansen", "Johansen", "Olsen", "Larsen", "Andersen", "Pedersen", "Nilsen", "Berg", "Haugen", "Dahl"]
_COMPANIES = ["Fjordkaffe AS", "Nordlys Bokhandel AS", "Bergen Regnskap AS", "Tromsø Trykk AS", "Vestland Bakeri AS",
              "Oslo Kurssenter AS", "Lofoten Reiseliv AS", "Trøndelag Tre AS"]
_PLACES = [("0150", "Oslo"), ("5003", "Bergen"), ("7010", "Trondheim"), ("9008", "Tromsø"), ("4006", "Stavanger"),
           ("8300", "Svolvær")]


class _Invalid(Exception):
    pass


def _money(value: Any) -> Decimal:
    amount = _decimal(value)
    if amount.as_tuple().exponent < -2:  # type: ignore[operator]
        raise _Invalid("Ensure that there are no more than 2 decimal places.")
    if abs(amount) >= Decimal("100000000"):
        raise _Invalid("Ensure that there are no more than 10 digits in total.")
    return amount.quantize(CENT)


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise _Invalid("Enter a number.")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise _Invalid("Enter a number.") from None
    if not amount.is_finite():
        raise _Invalid("Enter a number.")
    return amount


def _fmt_money(value: Decimal) -> str:
    return format(value.quantize(CENT, ROUND_HALF_UP), "f")


def _fmt_decimal(value: Decimal) -> str:
    return format(value.quantize(CENT, ROUND_HALF_UP), "f") if value == value.quantize(CENT) else format(value, "f")


def _rel_id(value: Any) -> int | None:
    """A relation given as an id, a string id or the full object (whose other fields are ignored)."""
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        value = value.get("id")
    if isinstance(value, bool):
        raise _Invalid("Select a valid choice.")
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        raise _Invalid("Select a valid choice. That choice is not one of the available choices.") from None


def _parse_text(value: Any, limit: int, required: bool) -> str:
    if value is None:
        value = ""
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise _Invalid("Enter a text.")
    value = str(value).strip()
    if required and not value:
        raise _Invalid("This field is required.")
    if len(value) > limit:
        raise _Invalid(f"Ensure this value has at most {limit} characters (it has {len(value)}).")
    return value


def _parse_int(value: Any) -> int:
    if isinstance(value, bool):
        raise _Invalid("Enter a whole number.")
    try:
        number = int(str(value).strip())
    except ValueError:
        raise _Invalid("Enter a whole number.") from None
    if number < 0:
        raise _Invalid("Ensure this value is greater than or equal to 0.")
    return number


def _parse_date(value: Any) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise _Invalid("Enter a valid date (YYYY-MM-DD).") from None


def _parse_email(value: Any) -> str:
    value = "" if value is None else str(value).strip()
    if value and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", value):
        raise _Invalid("Enter a valid email address.")
    return value


def _parse_orgnr(value: Any) -> str:
    value = "" if value is None else re.sub(r"\s", "", str(value))
    if value and not re.fullmatch(r"\d{9}", value):
        raise _Invalid("An organisation number has 9 digits.")
    return value


#: the field types whose value needs no stored records to check
_PARSERS: dict[str, Callable[[Any], Any]] = {"money": _money, "int": _parse_int, "date": _parse_date,
                                             "email": _parse_email, "orgnr": _parse_orgnr}


class DokusEmulator(Emulator):
    """The Dokus emulator (see the module docstring)."""

    name = "dokus"
    #: ``shape`` (for the contract check, ``toolkit.check``): ``""`` as documented; ``"ids_as_text"`` serves
    #: every ``id`` as text (``"3"``); ``"skewed_clock"`` answers with a ``Date`` two hours ahead
    knobs = ("shape",)
    shape = ""

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed)
        digest = hashlib.sha256(f"toolkit-dokus-sandbox-{seed}".encode()).hexdigest()
        self.email = USERS[API_USER]["email"]
        self.password = f"dk-{digest[:20]}"
        self._basic = base64.b64encode(f"{self.email}:{self.password}".encode()).decode()
        self.store: dict[str, dict[int, dict[str, Any]]] = {r.key: {} for r in RESOURCES}
        self._next_id: dict[str, int] = {r.key: 1 for r in RESOURCES}
        self._last_change = datetime(2025, 1, 6, 8, 0, 0)
        self._holds: list[dict[str, Any]] = []
        #: (method, path, JSON body) of every create/update that arrived (tests check what was sent)
        self.bodies: list[tuple[str, str, Any]] = []
        self._seed_data()

    # -- connect() / tests --------------------------------------------------------------------------------
    def credentials(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "email": self.email, "password": self.password}

    def secrets(self) -> list[str]:
        return [self.password, self._basic]

    def hold_next(self, path: str, seconds: float, *, method: str = "POST", times: int = 1,
                  when: str = "after") -> None:
        """Delay the answer of the next ``times`` requests whose path starts with ``path``.

        ``when="after"``: the request is processed, then its answer waits ``seconds`` (a client with a
        shorter timeout sees a timeout although the change was made). ``when="before"``: the request
        waits first and is processed afterwards.
        """
        self._holds.append({"path": path, "method": method.upper(), "seconds": float(seconds), "times": times,
                            "when": when})

    def change(self, resource: str, id: int, **fields: Any) -> dict[str, Any]:
        """Change a record directly, as a colleague would in the Dokus web app (bumps modification_time)."""
        record = self.store[resource][int(id)]
        clean, errors = self._clean(resource, fields, creating=False)
        if errors:
            raise ValueError(errors)
        record.update(clean)
        self._touch(record, COLLEAGUE)
        return self._render(resource, record)

    def record(self, resource: str, id: int) -> dict[str, Any] | None:
        """The stored record as the API would return it (None when it does not exist)."""
        rec = self.store[resource].get(int(id))
        return self._render(resource, rec) if rec is not None else None

    def records(self, resource: str) -> list[dict[str, Any]]:
        return [self._render(resource, r) for r in self.store[resource].values()]

    # -- clock ----------------------------------------------------------------------------------------
    def _now(self) -> str:
        now = datetime.now().replace(microsecond=0)
        if now <= self._last_change:
            now = self._last_change + timedelta(seconds=1)
        self._last_change = now
        return now.strftime(TIME_FORMAT)

    def _touch(self, record: dict[str, Any], user: int = API_USER) -> None:
        record["modification_time"] = self._now()
        record["modification_by"] = user

    # -- seed -------------------------------------------------------------------------------------------
    def _insert(self, key: str, values: dict[str, Any], when: datetime | None = None, user: int = 1
                ) -> dict[str, Any]:
        new_id = self._next_id[key]
        self._next_id[key] += 1
        stamp = (when or datetime(2024, 6, 1, 12, 0, 0)).strftime(TIME_FORMAT)
        record = {"id": new_id, **values, "creation_time": stamp, "modification_time": stamp, "creation_by": user,
                  "modification_by": user}
        self.store[key][new_id] = record
        return record

    def _seed_data(self) -> None:
        rng = self.rng
        start = datetime(2024, 1, 8, 9, 0, 0)

        def when() -> datetime:
            return start + timedelta(days=rng.randint(0, 300), seconds=rng.randint(0, 8 * 3600))

        for vid, vname in VAT_CLASSES:  # as the API serves them: only id and name
            self.store["vat_classes"][vid] = {"id": vid, "name": vname}
            self._next_id["vat_classes"] = vid + 1
        for prefix, (vat, names) in _PRODUCT_NAMES.items():
            count = min(len(names), rng.randint(5, 7))
            for n, pname in enumerate(rng.sample(names, count), start=1):
                base = {"BOK": (89, 449), "KAF": (39, 399), "KUR": (1490, 6990), "ABO": (99, 990)}[prefix]
                price = Decimal(f"{rng.randint(*base)}.{rng.choice(_ENDINGS)}")
                self._insert("products", {"name": pname, "comment": rng.choice(["", "Paperback", "Lagervare",
                                                                                 "Bestillingsvare", ""]),
                                          "price": price, "product_number": f"{prefix}-{1000 + n * 7}",
                                          "default_vat_class": vat}, when())
        for i, company in enumerate(_COMPANIES):
            zip_code, place = _PLACES[i % len(_PLACES)]
            slug = re.sub(r"[^a-z]", "", company.lower().replace(" as", ""))[:12]
            self._insert("customers", {"name": company, "email": f"post@{slug}.example.no",
                                       "org_number": f"9{rng.randint(10_000_000, 99_999_999)}",
                                       "address1": f"Storgata {rng.randint(1, 90)}", "zip_code": zip_code,
                                       "zip_place": place, "country": 1}, when())
        for _ in range(6):
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            zip_code, place = rng.choice(_PLACES)
            self._insert("customers", {"name": f"{first} {last}",
                                       "email": f"{first.lower()}.{last.lower()}@example.no", "org_number": "",
                                       "address1": f"Skogveien {rng.randint(1, 60)}", "zip_code": zip_code,
                                       "zip_place": place, "country": 1}, when())
        customer_ids = list(self.store["customers"])
        self._insert("groups", {"name": "Bedriftskunder", "members": customer_ids[:len(_COMPANIES)]}, when())
        self._insert("groups", {"name": "Privatkunder", "members": customer_ids[len(_COMPANIES):]}, when())
        self._insert("groups", {"name": "Nyhetsbrev", "members": rng.sample(customer_ids, 5)}, when())
        products = list(self.store["products"].values())
        invoice_no = 10001
        for key, count in (("invoices", 5), ("recurring", 2), ("sent", 8)):
            for _ in range(count):
                cust = self.store["customers"][rng.choice(customer_ids)]
                items = []
                for prod in rng.sample(products, rng.randint(1, 3)):
                    items.append({"name": prod["name"], "unit_price": prod["price"],
                                  "quantity": Decimal(rng.randint(1, 5)), "discount": Decimal(rng.choice([0, 0, 10])),
                                  "vat_class": prod["default_vat_class"]})
                created = when()
                values: dict[str, Any] = {
                    "recipient": cust["id"], "recipient_type": "customer", "recipient_name": cust["name"],
                    "recipient_email": cust["email"], "recipient_address1": cust["address1"],
                    "recipient_contact": "", "recipient_zip_code": cust["zip_code"],
                    "recipient_zip_place": cust["zip_place"], "recipient_country": 1,
                    "description": rng.choice(["Bestilling", "Kursavgift", "Abonnement", "Varer levert"]),
                    "sender_ref": "Ole Nordmann", "recipient_ref": "", "send_date":
                        (created + timedelta(days=rng.randint(0, 20))).date(),
                    "due_days": rng.choice([10, 14, 30]), "items": items}
                if key == "sent":
                    values["invoice_number"] = invoice_no
                    values["sent_date"] = values["send_date"]
                    invoice_no += 1
                self._insert(key, values, created)

    # -- rendering --------------------------------------------------------------------------------------
    def _vat(self, vid: int | None) -> dict[str, Any] | None:
        rec = self.store["vat_classes"].get(vid) if vid is not None else None
        return {"id": rec["id"], "name": rec["name"]} if rec else None

    def _customer_ref(self, cid: int | None) -> dict[str, Any] | None:
        rec = self.store["customers"].get(cid) if cid is not None else None
        if rec is None:
            return {"id": cid, "name": None} if cid is not None else None
        return {"id": rec["id"], "name": rec["name"], "email": rec["email"]}

    def _render(self, key: str, record: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in record.items():
            if name in ("creation_by", "modification_by"):
                out[name] = dict(USERS[value])
            elif name == "price":
                out[name] = _fmt_money(value)
            elif name == "default_vat_class":
                out[name] = self._vat(value)
            elif name in ("recipient",):
                out[name] = self._customer_ref(value)
            elif name == "members":
                out[name] = [self._customer_ref(c) for c in value]
            elif name == "items":
                out[name] = [{"name": it["name"], "unit_price": _fmt_money(it["unit_price"]),
                              "quantity": _fmt_decimal(it["quantity"]), "discount": _fmt_decimal(it["discount"]),
                              "vat_class": self._vat(it["vat_class"])} for it in value]
            elif isinstance(value, date):
                out[name] = value.isoformat()
            else:
                out[name] = value
        if self.shape == "ids_as_text" and "id" in out:
            out["id"] = str(out["id"])
        return out

    # -- validation -------------------------------------------------------------------------------------
    def _clean(self, key: str, data: Any, *, creating: bool) -> tuple[dict[str, Any], dict[str, list[str]]]:
        clean: dict[str, Any] = {}
        errors: dict[str, list[str]] = {}
        if not isinstance(data, dict):
            return {}, {"__all__": ["Send a JSON object."]}
        for name, (kind, required) in FIELDS[key].items():
            if name not in data:
                if creating:
                    if required:
                        errors[name] = ["This field is required."]
                    else:
                        clean[name] = DEFAULTS.get(name)
                continue
            try:
                clean[name] = self._parse(kind, data[name], required)
            except _Invalid as exc:
                errors[name] = [str(exc)]
        return clean, errors

    def _parse(self, kind: str, value: Any, required: bool) -> Any:
        """The stored value of a field of type ``kind`` (see :data:`FIELDS`); :class:`_Invalid` with the
        service's message when ``value`` does not fit."""
        if kind.startswith("str"):
            return _parse_text(value, int(kind.split(":")[1]), required)
        if kind in _PARSERS:
            return _PARSERS[kind](value)
        if kind in ("country", "vat_class", "customer"):
            return self._parse_relation(kind, value)
        if kind == "customers":
            if not isinstance(value, list):
                raise _Invalid("Enter a list of customers.")
            ids = [_rel_id(v) for v in value]
            missing = [str(i) for i in ids if i not in self.store["customers"]]
            if missing:
                raise _Invalid(f"Unknown customer id(s): {', '.join(missing)}.")
            return ids
        if kind == "items":
            if not isinstance(value, list):
                raise _Invalid("Enter a list of invoice lines.")
            return [self._parse_item(n, item) for n, item in enumerate(value, start=1)]
        raise _Invalid("Unsupported field.")  # pragma: no cover

    def _parse_relation(self, kind: str, value: Any) -> int | None:
        """A country or VAT class (required), or a customer (may be empty), given as an id or an object."""
        rid = _rel_id(value)
        if kind == "customer":
            known = rid is None or rid in self.store["customers"]
        else:
            known = rid is not None and rid in (COUNTRIES if kind == "country" else self.store["vat_classes"])
        if not known:
            raise _Invalid("Select a valid choice. That choice is not one of the available choices.")
        return rid

    def _parse_item(self, n: int, item: Any) -> dict[str, Any]:
        """Invoice line ``n`` (from 1); its messages start with ``Line n:``."""
        if not isinstance(item, dict):
            raise _Invalid(f"Line {n}: enter an object.")
        try:
            name = str(item.get("name") or "").strip()
            if not name:
                raise _Invalid("name: This field is required.")
            discount = _decimal(item.get("discount", 0) or 0)
            if not Decimal(0) <= discount <= Decimal(100):
                raise _Invalid("discount: Ensure this value is between 0 and 100.")
            vat = _rel_id(item.get("vat_class", 1))
            if vat not in self.store["vat_classes"]:
                raise _Invalid("vat_class: Select a valid choice.")
            return {"name": name, "unit_price": _money(item.get("unit_price")),
                    "quantity": _decimal(item.get("quantity", 1)), "discount": discount, "vat_class": vat}
        except _Invalid as exc:
            raise _Invalid(f"Line {n}: {exc}") from None

    # -- HTTP -------------------------------------------------------------------------------------------
    def routes(self) -> list[Any]:
        """The same routes for every resource (the read-only ones refuse changes with 405), and sending an
        invoice. Unknown paths and methods get Starlette's plain-text answers (the default :meth:`unrouted`)."""
        routes = []
        for res in RESOURCES:
            p = res.path
            routes += [
                Route(p, partial(self.get_records, res), methods=["GET"]),
                Route(p + "find/", partial(self.get_records, res), methods=["GET"]),
                Route(p + "{id:int}/", partial(self.get_or_update, res), methods=["GET", "POST"]),
            ]
            if res.writable:
                routes += [
                    Route(p + "create/", partial(self.post_create, res), methods=["POST"]),
                    Route(p + "{id:int}/delete/", partial(self.post_delete, res), methods=["POST"]),
                ]
            else:
                routes += [Route(p + "create/", partial(self.refuse_change, res), methods=["POST"]),
                           Route(p + "{id:int}/delete/", partial(self.refuse_change, res), methods=["POST"])]
        invoices = next(r for r in RESOURCES if r.key == "invoices")
        routes.append(Route("/invoices/{id:int}/send/", partial(self.post_send, invoices), methods=["POST"]))
        return routes

    def build_app(self) -> Any:
        """The routes behind the gate of basic auth, the Accept header and the :meth:`hold_next` delays."""
        return _Gate(self, super().build_app())

    @staticmethod
    def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Any:
        return Response(json.dumps(body, ensure_ascii=False), status_code=status, headers=headers,
                        media_type="application/json")

    def _not_found(self) -> Any:
        return self._json(404, {"detail": "Not found."})

    async def _body(self, request: Any) -> tuple[Any, Any]:
        ctype = request.headers.get("content-type", "")
        if "application/json" not in ctype:
            return None, self._json(415, {"detail": "Set the Content-Type header to application/json."})
        try:
            data = json.loads(await request.body() or b"null")
            self.bodies.append((request.method, request.url.path, data))
            return data, None
        except ValueError:
            return None, self._json(400, {"detail": "The body is not valid JSON."})

    async def get_records(self, res: _Res, request: Any) -> Any:
        """``GET /<resource>/`` and ``GET /<resource>/find/?…``: ``{"<plural>": [...]}``, every query
        parameter a case-insensitive substring filter."""
        records = [self._render(res.key, r) for r in self.store[res.key].values()]
        for name, wanted in request.query_params.items():
            records = [r for r in records if name not in r or _matches(r[name], wanted)]
        return self._json(200, {res.plural: records})

    async def get_or_update(self, res: _Res, request: Any) -> Any:
        """``GET /<resource>/<id>/`` → ``{"<singular>": {...}}``; ``POST`` the same path: a partial update
        (fields not sent are kept); invalid values → 401 ``{"errors"}``; unknown id → 404."""
        record = self.store[res.key].get(request.path_params["id"])
        if record is None:
            return self._not_found()
        if request.method == "GET":
            return self._json(200, {res.singular: self._render(res.key, record)})
        if not res.writable:
            return await self.refuse_change(res, request)
        data, problem = await self._body(request)
        if problem is not None:
            return problem
        clean, errors = self._clean(res.key, data, creating=False)
        if errors:
            return self._json(401, {"errors": errors})
        record.update(clean)
        self._touch(record)
        return self._json(200, {res.singular: self._render(res.key, record)})

    async def post_create(self, res: _Res, request: Any) -> Any:
        """``POST /<resource>/create/``: a new record (missing optional fields get their defaults)."""
        data, problem = await self._body(request)
        if problem is not None:
            return problem
        clean, errors = self._clean(res.key, data, creating=True)
        if errors:
            return self._json(401, {"errors": errors})
        stamp = datetime.strptime(self._now(), TIME_FORMAT)
        record = self._insert(res.key, clean, stamp, API_USER)
        return self._json(200, {res.singular: self._render(res.key, record)})

    async def post_delete(self, res: _Res, request: Any) -> Any:
        """``POST /<resource>/<id>/delete/`` → 204; unknown id → 404."""
        if self.store[res.key].pop(request.path_params["id"], None) is None:
            return self._not_found()
        self._now()  # a deletion is a change too: later changes get a later time
        return Response(status_code=204)

    async def refuse_change(self, res: _Res, request: Any) -> Any:
        """Create, update or delete of a read-only resource (sent invoices, VAT classes) → 405."""
        return self._json(405, {"detail": f"{res.plural.replace('_', ' ').capitalize()} cannot be changed."})

    async def post_send(self, res: _Res, request: Any) -> Any:
        """``POST /invoices/<id>/send/``: the invoice becomes a sent invoice with the next number."""
        record = self.store["invoices"].pop(request.path_params["id"], None)
        if record is None:
            return self._not_found()
        values = {k: v for k, v in record.items() if k not in ("id", "creation_time", "modification_time",
                                                                "creation_by", "modification_by")}
        numbers = [r.get("invoice_number", 0) for r in self.store["sent"].values()]
        values["invoice_number"] = max(numbers, default=10000) + 1
        values["sent_date"] = date.today()
        sent = self._insert("sent", values, datetime.strptime(self._now(), TIME_FORMAT), API_USER)
        return self._json(200, {"sent_invoice": self._render("sent", sent)})

    # -- gate: auth, Accept, holds ----------------------------------------------------------------------
    def _authorised(self, header: str | None) -> bool:
        if not header or not header.lower().startswith("basic "):
            return False
        try:
            given = base64.b64decode(header.split(" ", 1)[1].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return False
        return hmac.compare_digest(given.encode(), f"{self.email}:{self.password}".encode())

    def _take_hold(self, method: str, path: str) -> dict[str, Any] | None:
        for hold in self._holds:
            if hold["method"] == method and path.startswith(hold["path"]) and hold["times"] > 0:
                hold["times"] -= 1
                if hold["times"] <= 0:
                    self._holds.remove(hold)
                return hold
        return None


def _matches(value: Any, wanted: str) -> bool:
    """Case-insensitive substring filter; a relation matches its id exactly or its name as a substring."""
    wanted_low = wanted.lower()
    if isinstance(value, dict):
        return str(value.get("id")) == wanted or wanted_low in str(value.get("name") or "").lower()
    if isinstance(value, list):
        return any(_matches(v, wanted) for v in value)
    if value is None:
        return False
    return wanted_low in str(value).lower()


class _Gate:
    """ASGI wrapper: basic auth, the Accept header, and the test hook that delays answers."""

    def __init__(self, emulator: DokusEmulator, app: Any) -> None:
        self.emulator = emulator
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        em = self.emulator
        if em.shape == "skewed_clock":
            send = _dated(send, 7200.0)
        if not em._authorised(headers.get("authorization")):
            await _raw(send, 401, {"detail": "Invalid credentials"},
                       {"www-authenticate": 'Basic realm="Dokus"'})
            return
        if "application/json" not in headers.get("accept", ""):
            await _raw(send, 406, {"detail": "Set the Accept header to application/json."})
            return
        hold = em._take_hold(scope["method"], scope["path"])
        if hold is None:
            await self.app(scope, receive, send)
            return
        if hold["when"] == "before":
            await asyncio.sleep(hold["seconds"])
            await self.app(scope, receive, send)
            return
        messages: list[dict] = []

        async def buffer(message: dict) -> None:
            messages.append(message)

        await self.app(scope, receive, buffer)
        await asyncio.sleep(hold["seconds"])
        try:
            for message in messages:
                await send(message)
        except Exception:  # noqa: BLE001 - the client gave up waiting: nothing to answer
            pass


def _dated(send: Callable, offset: float) -> Callable:
    """``send`` with a ``Date`` header ``offset`` seconds ahead of this computer's clock on every answer."""
    from email.utils import formatdate
    import time

    async def dated(message: dict) -> None:
        if message["type"] == "http.response.start":
            stamp = formatdate(time.time() + offset, usegmt=True).encode()
            message = {**message, "headers": [*message.get("headers", []), (b"date", stamp)]}
        await send(message)
    return dated


async def _raw(send: Callable, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    payload = json.dumps(body).encode()
    hdrs = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    hdrs += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": payload})
