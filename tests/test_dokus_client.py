"""Dokus client against the emulator over loopback: every resource operation, money, the 401 quirk."""

from __future__ import annotations

import asyncio
import base64
import json
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest

import toolkit
from toolkit.core.http import HttpClient, HTTPResponse, MockTransport
from toolkit.sandbox import Sandbox

from .conftest import assert_clean

PRODUCT_COLUMNS = ["name", "comment", "price", "product_number", "default_vat_class_id", "default_vat_class_name",
                   "creation_time", "modification_time", "creation_by_id", "creation_by_name", "modification_by_id",
                   "modification_by_name"]


@pytest.fixture
def dks(make_sandbox: Any) -> Sandbox:
    """A private Dokus sandbox (tests here change data)."""
    return make_sandbox(services=["dokus"], seed=3)


def posts(sandbox: Sandbox, path_part: str = "") -> list[Any]:
    return [r for r in sandbox.emulator("dokus").requests if r.method == "POST" and path_part in r.path]


# -- reading ------------------------------------------------------------------------------------------------
@pytest.mark.integration
def test_products_list_is_a_typed_frame_indexed_by_id(sb: Sandbox) -> None:
    dk = toolkit.dokus.connect(**sb.credentials("dokus"))
    df = dk.products.list()
    server = sb.emulator("dokus").records("products")
    assert df.index.name == "id"
    assert sorted(df.index.tolist()) == sorted(r["id"] for r in server)
    assert list(df.columns[:len(PRODUCT_COLUMNS)]) == PRODUCT_COLUMNS
    assert str(df["name"].dtype) == "string" and str(df["default_vat_class_id"].dtype) == "Int64"
    assert str(df["modification_time"].dtype).startswith("datetime64")
    first = server[0]
    row = df.loc[first["id"]]
    assert isinstance(row["price"], Decimal) and str(row["price"]) == first["price"]
    assert row["default_vat_class_id"] == first["default_vat_class"]["id"]
    assert row["default_vat_class_name"] == first["default_vat_class"]["name"]
    assert row["creation_by_name"] == first["creation_by"]["first_name"]


@pytest.mark.integration
def test_filters_on_list_url_and_find(sb: Sandbox) -> None:
    dk = toolkit.dokus.connect(**sb.credentials("dokus"))
    coffee = dk.products.list(product_number="kaf-")
    assert len(coffee) > 0 and coffee["product_number"].str.startswith("KAF-").all()
    assert sorted(dk.products.find(product_number="KAF-").index) == sorted(coffee.index)
    last = sb.emulator("dokus").requests[-1]
    assert last.path == "/products/find/" and "product_number=KAF-" in last.query
    vat2 = dk.products.list(default_vat_class_id=2)
    assert len(vat2) > 0 and (vat2["default_vat_class_id"] == 2).all()


@pytest.mark.integration
def test_empty_list_keeps_columns_and_dtypes(sb: Sandbox) -> None:
    dk = toolkit.dokus.connect(**sb.credentials("dokus"))
    empty = dk.products.list(name="no product has this name")
    assert empty.empty and list(empty.columns) == PRODUCT_COLUMNS
    assert str(empty["default_vat_class_id"].dtype) == "Int64" and empty.index.name == "id"
    assert list(dk.sent_invoices.list(recipient_name="nobody at all").columns)[:3] == \
        ["recipient_id", "recipient_type", "recipient_name"]


@pytest.mark.integration
def test_every_resource_lists_and_gets(sb: Sandbox) -> None:
    dk = toolkit.dokus.connect(**sb.credentials("dokus"))
    emulator = sb.emulator("dokus")
    for name, store in [("products", "products"), ("customers", "customers"), ("customer_groups", "groups"),
                        ("invoices", "invoices"), ("sent_invoices", "sent"), ("recurring_invoices", "recurring"),
                        ("vat_classes", "vat_classes")]:
        resource = getattr(dk, name)
        df = resource.list()
        assert len(df) == len(emulator.store[store]) > 0, name
        one = resource.get(int(df.index[0]))
        assert one.name == df.index[0], name
    assert dk.vat_classes.list().loc[1, "name"] == "High VAT"
    group = dk.customer_groups.list().iloc[0]
    assert isinstance(group["members_id"], list) and all(isinstance(i, int) for i in group["members_id"])
    sent = dk.sent_invoices.list()
    assert str(sent["invoice_number"].dtype) == "Int64" and sent["invoice_number"].notna().all()
    items = dk.invoices.list().iloc[0]["items"]
    assert isinstance(items, list) and isinstance(items[0]["unit_price"], str)


@pytest.mark.integration
def test_get_unknown_id_is_not_found(sb: Sandbox) -> None:
    dk = toolkit.dokus.connect(**sb.credentials("dokus"))
    with pytest.raises(toolkit.NotFound) as info:
        dk.products.get(999999)
    assert "Dokus" in str(info.value) and "999999" in str(info.value)
    with pytest.raises(toolkit.ValidationError):
        dk.products.get("abc")


# -- writing ------------------------------------------------------------------------------------------------
@pytest.mark.integration
def test_create_update_delete_product(dk: Any, dks: Sandbox) -> None:
    emulator = dks.emulator("dokus")
    made = dk.products.create(name="Testkaffe", price="49.90", product_number="T-1", default_vat_class=2)
    new_id = int(made.name)
    assert emulator.record("products", new_id)["price"] == "49.90"
    assert made["default_vat_class_name"] == "Low VAT" and made["price"] == Decimal("49.90")
    updated = dk.products.update(new_id, price=Decimal("52.5"), default_vat_class={"id": 1, "name": "High VAT"})
    assert updated["price"] == Decimal("52.50") and updated["default_vat_class_id"] == 1
    assert emulator.bodies[-1][2] == {"price": "52.50", "default_vat_class": 1}
    assert emulator.record("products", new_id)["name"] == "Testkaffe"  # partial update kept the rest
    assert dk.products.delete(new_id) is None
    assert emulator.record("products", new_id) is None
    assert posts(dks, f"/products/{new_id}/delete/")[-1].status == 204
    with pytest.raises(toolkit.NotFound):
        dk.products.delete(new_id)


@pytest.mark.integration
def test_money_round_trips_exactly(dk: Any, dks: Sandbox) -> None:
    emulator = dks.emulator("dokus")
    made = dk.products.create(name="Bok", price="199.50", product_number="T-2", default_vat_class=4)
    pid = int(made.name)
    price = dk.products.get(pid)["price"]
    assert price == Decimal("199.50") and str(price) == "199.50"
    dk.products.update(pid, price=toolkit.dokus.round_money(price * Decimal("1.05")))
    assert emulator.bodies[-1][2] == {"price": "209.48"}
    assert emulator.record("products", pid)["price"] == "209.48"
    assert str(dk.products.get(pid)["price"]) == "209.48"
    with pytest.raises(toolkit.ValidationError) as info:
        dk.products.update(pid, price=price * Decimal("1.05"))  # 209.4750: more than two decimals
    assert "price" in info.value.errors


@pytest.mark.integration
def test_partial_update_sends_only_given_fields(dk: Any, dks: Sandbox) -> None:
    emulator = dks.emulator("dokus")
    before = emulator.record("products", 1)
    dk.products.update(1, comment="Ny kommentar")
    assert emulator.bodies[-1] == ("POST", "/products/1/", {"comment": "Ny kommentar"})
    after = emulator.record("products", 1)
    assert after["comment"] == "Ny kommentar"
    assert {k: after[k] for k in ("name", "price", "product_number", "default_vat_class")} == \
        {k: before[k] for k in ("name", "price", "product_number", "default_vat_class")}
    assert after["modification_time"] > before["modification_time"]


@pytest.mark.integration
def test_modification_time_differs_for_changes_in_the_same_second(dk: Any, dks: Sandbox) -> None:
    times = [dk.products.update(2, comment=f"c{i}")["modification_time"] for i in range(3)]
    assert times[0] < times[1] < times[2]


@pytest.mark.integration
def test_customers_groups_and_invoices_crud(dk: Any, dks: Sandbox) -> None:
    emulator = dks.emulator("dokus")
    cust = dk.customers.create(name="Fjellbakst AS", email="post@fjellbakst.example.no", org_number="912345678",
                               country=1)
    cid = int(cust.name)
    assert cust["country_id"] == 1 and cust["org_number"] == "912345678"
    assert dk.customers.update(cid, zip_place="Bodø")["zip_place"] == "Bodø"
    group = dk.customer_groups.create(name="Bakerier", members=[cid, {"id": 1, "name": "x"}])
    gid = int(group.name)
    assert group["members_id"] == [cid, 1]
    assert dk.customer_groups.update(gid, members_id=[1])["members_id"] == [1]
    invoice = dk.invoices.create(recipient=cid, recipient_name="Fjellbakst AS", send_date="2025-03-01", due_days=14,
                                 items=[{"name": "Kaffe", "unit_price": "49.90", "quantity": "2", "vat_class": 2}])
    iid = int(invoice.name)
    assert invoice["recipient_id"] == cid and invoice["items"][0]["unit_price"] == "49.90"
    assert invoice["send_date"] == pd.Timestamp("2025-03-01")
    assert emulator.bodies[-1][2]["send_date"] == "2025-03-01"
    assert dk.invoices.update(iid, description="Mars")["description"] == "Mars"
    recurring = dk.recurring_invoices.create(recipient_name="Fjellbakst AS", items=[])
    rid = int(recurring.name)
    assert dk.recurring_invoices.update(rid, due_days=30)["due_days"] == 30
    for resource, ident, store in ((dk.recurring_invoices, rid, "recurring"), (dk.invoices, iid, "invoices"),
                                   (dk.customer_groups, gid, "groups"), (dk.customers, cid, "customers")):
        resource.delete(ident)
        assert emulator.record(store, ident) is None


@pytest.mark.integration
def test_read_only_resources_refuse_changes_without_a_request(dk: Any, dks: Sandbox) -> None:
    emulator = dks.emulator("dokus")
    sent_id = int(dk.sent_invoices.list().index[0])
    before = len(emulator.requests)
    for call in (lambda: dk.sent_invoices.create(recipient_name="x"),
                 lambda: dk.sent_invoices.update(sent_id, description="x"),
                 lambda: dk.sent_invoices.delete(sent_id),
                 lambda: dk.vat_classes.update(1, name="x")):
        with pytest.raises(toolkit.ValidationError) as info:
            call()
        assert "read-only" in str(info.value)
    assert "credit note" in str(pytest.raises(toolkit.ValidationError, dk.sent_invoices.delete, sent_id).value)
    assert len(emulator.requests) == before


@pytest.mark.integration
def test_read_only_and_unknown_fields_are_refused_before_sending(dk: Any, dks: Sandbox) -> None:
    emulator = dks.emulator("dokus")
    before = len(emulator.requests)
    with pytest.raises(toolkit.ValidationError) as info:
        dk.products.update(1, modification_time="2030-01-01 00:00:00", prise="10.00", default_vat_class_name="x")
    assert set(info.value.errors) == {"modification_time", "prise", "default_vat_class_name"}
    assert "default_vat_class_id" in info.value.errors["default_vat_class_name"][0]
    with pytest.raises(toolkit.ValidationError) as info:
        dk.products.create(price="abc")
    assert set(info.value.errors) == {"price", "name"}
    assert len(emulator.requests) == before


# -- errors -------------------------------------------------------------------------------------------------
@pytest.mark.integration
def test_invalid_values_401_become_field_errors(dk: Any, dks: Sandbox) -> None:
    with pytest.raises(toolkit.ValidationError) as info:
        dk.products.update(1, default_vat_class=99, name="x" * 150)
    err = info.value
    assert err.status == 401
    assert set(err.errors) == {"default_vat_class", "name"}
    assert "valid choice" in err.errors["default_vat_class"][0]
    assert "default_vat_class" in str(err) and "at most 100 characters" in str(err)
    assert not isinstance(err, toolkit.Unauthorized)


@pytest.mark.integration
def test_bad_credentials_401_says_check_email_and_password(dks: Sandbox) -> None:
    creds = dks.credentials("dokus")
    dk = toolkit.dokus.connect(base_url=creds["base_url"], email=creds["email"], password="wrong-password-1")
    with pytest.raises(toolkit.Unauthorized) as info:
        dk.products.list()
    text = str(info.value)
    assert "e-mail and password" in text and info.value.status == 401
    assert not isinstance(info.value, toolkit.ValidationError)
    assert "wrong-password-1" not in text and "wrong-password-1" not in repr(info.value)


@pytest.mark.integration
def test_required_headers_and_406_without_accept(dk: Any, dks: Sandbox) -> None:
    emulator = dks.emulator("dokus")
    dk.products.list()
    dk.products.update(1, comment="x")
    get, post = emulator.requests[-2], emulator.requests[-1]
    assert get.headers["accept"] == "application/json" and post.headers["accept"] == "application/json"
    assert post.headers["content-type"] == "application/json"
    assert get.headers["authorization"].startswith("Basic ")
    creds = dks.credentials("dokus")

    async def without_accept() -> None:
        http = HttpClient("dokus", creds["base_url"], basic_auth=(creds["email"], creds["password"].reveal()))
        try:
            await http.request("GET", "/products/")
        finally:
            await http.aclose()

    with pytest.raises(toolkit.APIError) as info:
        asyncio.run(without_accept())
    assert info.value.status == 406


def test_400_with_field_errors_is_a_validation_error() -> None:
    def handler(request: Any) -> Any:
        return HTTPResponse(400, json={"errors": {"price": ["Enter a number."]}})

    dk = toolkit.dokus.connect(base_url="https://x.dokus.no", email="a@b.no", password="pw-123456",
                               transport=MockTransport(handler))
    with pytest.raises(toolkit.ValidationError) as info:
        dk.products.update(1, price="1.00")
    assert info.value.errors == {"price": ["Enter a number."]} and info.value.status == 400


def test_base_url_from_subdomain_and_override() -> None:
    seen: list[str] = []

    def handler(request: Any) -> Any:
        seen.append(str(request.url))
        assert request.headers["accept"] == "application/json"
        user, _, pw = base64.b64decode(request.headers["authorization"].split()[1]).decode().partition(":")
        assert (user, pw) == ("ole@example.no", "pw-secret-1")
        return HTTPResponse(200, json={"products": []})

    dk = toolkit.dokus.connect("mittfirma", email="ole@example.no", password="pw-secret-1",
                               transport=MockTransport(handler))
    dk.products.list(name="Django")
    assert seen[-1] == "https://mittfirma.dokus.no/products/?name=Django"
    dk = toolkit.dokus.connect("mittfirma", email="ole@example.no", password="pw-secret-1",
                               base_url="http://127.0.0.1:9/", transport=MockTransport(handler))
    dk.products.list()
    assert seen[-1] == "http://127.0.0.1:9/products/"
    with pytest.raises(toolkit.ValidationError):
        toolkit.dokus.connect("not a subdomain!", email="a@b.no", password="x")


def test_connect_reads_credentials_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TOOLKIT_DOKUS_SUBDOMAIN", "envfirma")
    monkeypatch.setenv("TOOLKIT_DOKUS_EMAIL", "env@example.no")
    monkeypatch.setenv("TOOLKIT_DOKUS_PASSWORD", "env-password-1")
    dk = toolkit.dokus.connect()
    assert dk.aio.base_url == "https://envfirma.dokus.no" and dk.aio.email == "env@example.no"
    assert "env-password-1" not in repr(dk)
    monkeypatch.delenv("TOOLKIT_DOKUS_PASSWORD")
    with pytest.raises(toolkit.ValidationError) as info:
        toolkit.dokus.AsyncClient("x", email="a@b.no")
    assert "TOOLKIT_DOKUS_PASSWORD" in str(info.value)


def test_envelope_keys_and_paths_are_configurable() -> None:
    seen: list[str] = []

    def handler(request: Any) -> Any:
        seen.append(request.url.path)
        return HTTPResponse(200, json={"members_groups": [{"id": 5, "name": "G", "members": [{"id": 1}]}]})

    dk = toolkit.dokus.connect(base_url="https://x.dokus.no", email="a@b.no", password="pw-123456",
                               transport=MockTransport(handler),
                               resources={"customer_groups": {"path": "/groups/", "list_key": "members_groups"}})
    df = dk.customer_groups.list()
    assert seen == ["/groups/"] and df.loc[5, "members_id"] == [1]


@pytest.mark.integration
def test_no_secret_in_logs_reprs_or_frames(dk: Any, dks: Sandbox, debug_logs: Any) -> None:
    df = dk.products.list()
    dk.products.update(int(df.index[0]), comment="logget")
    with pytest.raises(toolkit.ValidationError):
        dk.products.update(int(df.index[0]), default_vat_class=77)
    secrets = dks.secrets()
    assert secrets and any(len(s) > 20 for s in secrets)
    text = "\n".join(r.getMessage() for r in debug_logs.records)
    assert "/products/" in text  # the requests were logged …
    assert_clean(text, secrets, "debug logs")  # … without the password or the basic-auth header value
    assert_clean(repr(dk) + repr(dk.aio.http) + repr(df) + df.to_string(), secrets, "reprs")
    assert_clean(json.dumps(dks.credentials("dokus"), default=repr), secrets, "credentials repr")


@pytest.mark.integration
def test_async_client_for_await(sb: Sandbox) -> None:
    creds = sb.credentials("dokus")

    async def main() -> tuple[int, int]:
        async with toolkit.dokus.AsyncClient(base_url=creds["base_url"], email=creds["email"],
                                             password=creds["password"]) as dk:
            products, vat = await asyncio.gather(dk.products.list(), dk.vat_classes.list())
            return len(products), len(vat)

    assert asyncio.run(main()) == (len(sb.emulator("dokus").store["products"]), 4)


@pytest.mark.integration
@pytest.mark.parametrize("price, says", [("1,500", "1500.00 or 1,50"), ("1e3", "1000.00"), ("1e400", "exponent"),
                                         ("NaN", "not a number"), ("-10.00", "negative price")])
def test_create_and_update_refuse_risky_prices_and_send_nothing(dk: Any, dks: Sandbox, price: str, says: str) -> None:
    pid = int(dks.emulator("dokus").records("products")[0]["id"])
    for call in (lambda: dk.products.create(name="Risiko", price=price, product_number="R-1"),
                 lambda: dk.products.update(pid, price=price)):
        with pytest.raises(toolkit.ValidationError) as info:
            call()
        assert says in info.value.errors["price"][0]
    assert posts(dks) == []


@pytest.mark.integration
def test_create_reads_an_unambiguous_decimal_comma(dk: Any, dks: Sandbox) -> None:
    made = dk.products.create(name="Komma", price="1 299,50", product_number="K-1")
    assert made["price"] == Decimal("1299.50")
    assert dks.emulator("dokus").record("products", int(made.name))["price"] == "1299.50"
