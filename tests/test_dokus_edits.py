"""Safe ad-hoc product edits: diff → plan → apply, over loopback against the emulator."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pandas as pd
import pytest

import toolkit
from toolkit.sandbox import Sandbox

from .conftest import assert_clean

pytestmark = pytest.mark.integration


@pytest.fixture
def dks(make_sandbox: Any) -> Sandbox:
    return make_sandbox(services=["dokus"], seed=5)


def writes(sandbox: Sandbox) -> list[Any]:
    return [r for r in sandbox.emulator("dokus").requests if r.method == "POST"]


def test_diff_plans_only_changed_fields_and_sends_nothing(dk: Any, dks: Sandbox) -> None:
    original = dk.products.list(product_number="KAF-")
    edited = original.copy()
    edited["price"] = edited["price"] * Decimal("1.05")
    first = int(original.index[0])
    edited.loc[first, "comment"] = "Ny pakning"
    before = len(dks.emulator("dokus").requests)
    plan = dk.products.diff(original, edited)
    assert len(dks.emulator("dokus").requests) == before
    assert list(plan.columns[:5]) == ["id", "field", "old", "new", "action"]
    assert set(plan["action"]) == {"update"}
    assert sorted(plan.loc[plan["field"] == "price", "id"].tolist()) == sorted(original.index.tolist())
    assert plan.loc[plan["field"] == "comment", "id"].tolist() == [first]
    for _, row in plan[plan["field"] == "price"].iterrows():
        exact = original.loc[row["id"], "price"] * Decimal("1.05")
        assert row["old"] == original.loc[row["id"], "price"]
        assert row["new"] == exact.quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
        assert ("rounded half up" in row["message"]) == (exact != row["new"])


def test_apply_updates_exact_money_and_sends_only_changed_fields(dk: Any, dks: Sandbox) -> None:
    emulator = dks.emulator("dokus")
    original = dk.products.list(product_number="BOK-")
    edited = original.copy()
    edited["price"] = edited["price"] * Decimal("1.05")
    plan = dk.products.diff(original, edited)
    results = dk.products.apply(plan, progress=False)
    assert list(results.columns[:4]) == ["id", "action", "outcome", "message"]
    assert sorted(results["id"].tolist()) == sorted(original.index.tolist())
    assert set(results["outcome"]) == {"updated"}
    for pid in original.index:
        wanted = (original.loc[pid, "price"] * Decimal("1.05")).quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")
        assert emulator.record("products", int(pid))["price"] == format(wanted, "f")
    sent = [body for method, path, body in emulator.bodies if path.startswith("/products/")]
    assert len(sent) == len(original) and all(set(b) == {"price"} for b in sent)
    assert all(isinstance(b["price"], str) and len(b["price"].split(".")[1]) == 2 for b in sent)


def test_concurrent_change_is_a_conflict_and_nothing_is_sent(dk: Any, dks: Sandbox) -> None:
    emulator = dks.emulator("dokus")
    original = dk.products.list(product_number="KAF-")
    edited = original.copy()
    edited["price"] = edited["price"] * Decimal("1.05")
    plan = dk.products.diff(original, edited)
    victim = int(original.index[1])
    emulator.change("products", victim, comment="Endret av Kari")  # a colleague, another field
    results = dk.products.apply(plan, progress=False).set_index("id")
    assert results.loc[victim, "outcome"] == "conflict"
    assert "Kari Kollega" in results.loc[victim, "message"] and "nothing sent" in results.loc[victim, "message"]
    assert set(results.drop(index=victim)["outcome"]) == {"updated"}
    assert not [r for r in writes(dks) if r.path == f"/products/{victim}/"]
    assert emulator.record("products", victim)["price"] == format(original.loc[victim, "price"], "f")
    # resolve: read again, redo the edit on the fresh table, plan and apply
    fresh = dk.products.list(product_number="KAF-")
    redo = fresh.copy()
    redo.loc[victim, "price"] = original.loc[victim, "price"] * Decimal("1.05")
    again = dk.products.apply(dk.products.diff(fresh, redo), progress=False)
    assert again["id"].tolist() == [victim] and again["outcome"].tolist() == ["updated"]
    assert emulator.record("products", victim)["comment"] == "Endret av Kari"


def test_same_field_changed_by_colleague_is_a_conflict(dk: Any, dks: Sandbox) -> None:
    emulator = dks.emulator("dokus")
    original = dk.products.list()
    pid = int(original.index[0])
    edited = original.copy()
    edited.loc[pid, "name"] = "Mitt navn"
    plan = dk.products.diff(original, edited)
    emulator.change("products", pid, name="Kollegas navn")
    results = dk.products.apply(plan, progress=False)
    assert results["outcome"].tolist() == ["conflict"] and "name changed" in results["message"][0]
    assert emulator.record("products", pid)["name"] == "Kollegas navn"


def test_deleted_on_server_since_read_is_a_conflict(dk: Any, dks: Sandbox) -> None:
    original = dk.products.list()
    pid = int(original.index[0])
    edited = original.copy()
    edited.loc[pid, "comment"] = "x"
    plan = dk.products.diff(original, edited)
    dk.products.delete(pid)
    assert dk.products.apply(plan, progress=False)["outcome"].tolist() == ["conflict"]


def test_removed_rows_are_deleted_only_with_allow_delete(dk: Any, dks: Sandbox) -> None:
    emulator = dks.emulator("dokus")
    original = dk.products.list(product_number="ABO-")
    gone = int(original.index[0])
    edited = original.drop(index=gone)
    plan = dk.products.diff(original, edited)
    assert plan.empty and "allow_delete" in plan.attrs["summary"]
    assert dk.products.apply(plan, progress=False).empty
    assert emulator.record("products", gone) is not None
    plan = dk.products.diff(original, edited, allow_delete=True)
    assert plan[["id", "action"]].values.tolist() == [[gone, "delete"]]
    results = dk.products.apply(plan, progress=False)
    assert results[["id", "outcome"]].values.tolist() == [[gone, "deleted"]]
    assert emulator.record("products", gone) is None
    assert [r.status for r in writes(dks) if r.path == f"/products/{gone}/delete/"] == [204]


def test_dry_run_sends_nothing(dk: Any, dks: Sandbox) -> None:
    emulator = dks.emulator("dokus")
    original = dk.products.list(product_number="KUR-")
    edited = original.copy()
    edited["price"] = edited["price"] + Decimal("100")
    edited = edited.drop(index=original.index[0])
    edited.loc["new 1"] = {"name": "Kurs: Nytt", "price": Decimal("990"), "product_number": "KUR-NEW"}
    plan = dk.products.diff(original, edited, allow_delete=True)
    before = [emulator.record("products", int(i)) for i in original.index]
    results = dk.products.apply(plan, dry_run=True, progress=False)
    assert sorted(set(results["outcome"])) == ["would create", "would delete", "would update"]
    assert len(results) == len(original) + 1
    assert writes(dks) == []
    assert [emulator.record("products", int(i)) for i in original.index] == before


def test_create_after_timeout_is_made_only_once(dks: Sandbox) -> None:
    emulator = dks.emulator("dokus")
    dk = toolkit.dokus.connect(**dks.credentials("dokus"), timeout=0.5)
    original = dk.products.list(product_number="KAF-")
    edited = original.copy()
    edited.loc["new 1"] = {"name": "Kaffe, ny", "price": Decimal("59.90"), "product_number": "KAF-7777",
                           "default_vat_class_id": 2}
    plan = dk.products.diff(original, edited)
    assert set(plan["action"]) == {"create"} and plan["id"].isna().all()
    emulator.hold_next("/products/create/", 1.5)  # processed, but the answer comes after the client gave up
    results = dk.products.apply(plan, progress=False)
    row = results.iloc[0]
    assert row["outcome"] == "created" and "not sent again" in row["message"]
    made = [r for r in emulator.records("products") if r["product_number"] == "KAF-7777"]
    assert len(made) == 1 and int(row["id"]) == made[0]["id"]
    assert len([r for r in writes(dks) if r.path == "/products/create/"]) == 1
    # applying the same plan again does not make a second one
    again = dk.products.apply(plan, progress=False)
    assert again["outcome"].tolist() == ["conflict"]
    assert len([r for r in emulator.records("products") if r["product_number"] == "KAF-7777"]) == 1
    dk.close()


def test_create_lost_before_processing_is_reported_failed_not_resent(dks: Sandbox) -> None:
    emulator = dks.emulator("dokus")
    dk = toolkit.dokus.connect(**dks.credentials("dokus"), timeout=0.5)
    original = dk.products.list(product_number="none-such")
    new = pd.DataFrame([{"name": "Treg", "price": Decimal("10.00"), "product_number": "SLOW-1"}],
                       index=pd.Index([pd.NA], name="id"))
    plan = dk.products.diff(original, new)
    emulator.hold_next("/products/create/", 1.5, when="before")
    row = dk.products.apply(plan, progress=False).iloc[0]
    assert row["outcome"] == "failed" and "list again" in row["message"]
    assert len([r for r in writes(dks) if r.path == "/products/create/"]) == 1
    dk.close()


def test_creates_from_na_ids_and_id_column(dk: Any, dks: Sandbox) -> None:
    emulator = dks.emulator("dokus")
    original = dk.products.list(product_number="ABO-")
    flat = original.reset_index()
    new_rows = pd.DataFrame([{"id": pd.NA, "name": "Abo A", "price": "120", "product_number": "ABO-A"},
                             {"id": pd.NA, "name": "Abo B", "price": Decimal("130.5"), "product_number": "ABO-B",
                              "default_vat_class_id": 2}])
    edited = pd.concat([flat, new_rows], ignore_index=True)
    plan = dk.products.diff(original, edited)
    assert plan["row"].unique().tolist() == ["new 1", "new 2"]
    results = dk.products.apply(plan, progress=False)
    assert results["outcome"].tolist() == ["created", "created"] and results["row"].tolist() == ["new 1", "new 2"]
    made = {r["product_number"]: r for r in emulator.records("products") if r["product_number"] in ("ABO-A", "ABO-B")}
    assert made["ABO-A"]["price"] == "120.00" and made["ABO-B"]["price"] == "130.50"
    assert made["ABO-B"]["default_vat_class"]["id"] == 2
    assert sorted(results["id"].tolist()) == sorted(r["id"] for r in made.values())


def test_concat_with_colliding_labels_is_refused(dk: Any) -> None:
    original = dk.products.list()
    extra = pd.DataFrame([{"name": "X", "price": Decimal("1.00")}] * 3)  # index 0, 1, 2: 1 and 2 are real ids
    with pytest.raises(toolkit.ValidationError) as info:
        dk.products.diff(original, pd.concat([original, extra]))
    assert "more than once" in str(info.value) and "pd.NA" in str(info.value)


def test_read_only_columns_are_refused_with_a_message(dk: Any, dks: Sandbox) -> None:
    original = dk.products.list()
    edited = original.copy()
    edited.loc[original.index[1], "creation_by_id"] = 3
    edited.loc[original.index[2], "default_vat_class_name"] = "Low VAT"
    before = len(dks.emulator("dokus").requests)
    with pytest.raises(toolkit.ValidationError) as info:
        dk.products.diff(original, edited)
    assert set(info.value.errors) == {"creation_by_id", "default_vat_class_name"}
    assert "default_vat_class_id" in info.value.errors["default_vat_class_name"][0]
    assert len(dks.emulator("dokus").requests) == before


def test_an_edited_table_read_before_a_colleagues_change_is_a_conflict_not_a_revert(dk: Any, dks: Sandbox) -> None:
    """The edited table's own modification_time (a sheet carries it) older than the original's: the item changed
    on Dokus after the analyst's copy was read. The plan says so and apply refuses it; the colleague's value
    stays. Rows read at the same time as the original are applied."""
    read = dk.products.list()
    a, b = (int(i) for i in read.index[:2])
    dk.products.update(a, comment="kollega")                 # a colleague, after the analyst's read
    edited = read.copy()
    edited.loc[a, "name"] = "Analytikerens navn"
    edited.loc[b, "name"] = "Også endret"
    plan = dk.products.diff(dk.products.list(), edited)      # the plan made later, from Dokus as it is now
    stale = plan[plan["id"] == a]
    assert set(stale["field"]) == {"name", "comment"}        # the comment would have been reverted
    assert stale["message"].str.contains("changed on Dokus since the sheet was read").all()
    assert not plan.loc[plan["id"] == b, "message"].str.contains("changed on Dokus").any()
    results = dk.products.apply(plan, progress=False).set_index("id")
    assert results.loc[a, "outcome"] == "conflict" and results.loc[b, "outcome"] == "updated"
    assert dk.products.get(a)["comment"] == "kollega" and dk.products.get(a)["name"] == read.loc[a, "name"]


def test_values_are_checked_before_sending(dk: Any, dks: Sandbox) -> None:
    original = dk.products.list(product_number="KAF-")
    a, b, c = (int(i) for i in original.index[:3])
    edited = original.copy().astype({"price": object})
    edited.loc[a, "price"] = "gratis"
    edited.loc[a, "comment"] = "ok"
    edited.loc[b, "name"] = ""
    edited.loc[c, "default_vat_class_id"] = 99  # passes our checks, refused by Dokus (401 quirk)
    plan = dk.products.diff(original, edited)
    assert set(plan.loc[plan["id"] == a, "action"]) == {"invalid", "update"}
    assert plan.loc[plan["id"] == b, "action"].tolist() == ["invalid"]
    results = dk.products.apply(plan, progress=False).set_index("id")
    assert results.loc[a, "outcome"] == "invalid" and "price" in results.loc[a, "message"]
    assert results.loc[b, "outcome"] == "invalid" and "name" in results.loc[b, "message"]
    assert results.loc[c, "outcome"] == "invalid" and "default_vat_class" in results.loc[c, "message"]
    assert [r.path for r in writes(dks)] == [f"/products/{c}/"]
    assert dks.emulator("dokus").record("products", a)["comment"] != "ok"


def test_float_prices_become_exact_rounded_strings(dk: Any, dks: Sandbox) -> None:
    emulator = dks.emulator("dokus")
    original = dk.products.list(product_number="BOK-")
    pid = int(original.index[0])
    edited = original.copy()
    edited["price"] = edited["price"].astype(float)  # e.g. after a CSV round trip: no change at all
    assert dk.products.diff(original, edited).empty
    edited.loc[pid, "price"] = 0.1 + 0.2
    plan = dk.products.diff(original, edited)
    assert plan["new"].tolist() == [Decimal("0.30")] and "float" in plan["message"][0]
    dk.products.apply(plan, progress=False)
    assert emulator.bodies[-1][2] == {"price": "0.30"}


def test_reapplying_a_done_plan_changes_nothing(dk: Any, dks: Sandbox) -> None:
    original = dk.products.list(product_number="KUR-")
    edited = original.copy()
    edited["comment"] = "Påmelding åpen"
    plan = dk.products.diff(original, edited)
    dk.products.apply(plan, progress=False)
    sent = len(writes(dks))
    again = dk.products.apply(plan, progress=False)
    assert set(again["outcome"]) == {"updated"} and again["message"].str.contains("nothing sent").all()
    assert len(writes(dks)) == sent


def test_plan_for_another_resource_and_read_only_resources_are_refused(dk: Any) -> None:
    original = dk.products.list()
    edited = original.copy()
    edited.loc[original.index[0], "comment"] = "x"
    plan = dk.products.diff(original, edited)
    with pytest.raises(toolkit.ValidationError, match="made for products"):
        dk.customers.apply(plan)
    sent = dk.sent_invoices.list()
    with pytest.raises(toolkit.ValidationError, match="read-only"):
        dk.sent_invoices.diff(sent, sent)


def test_customers_edit_through_the_same_plan(dk: Any, dks: Sandbox) -> None:
    original = dk.customers.list()
    cid = int(original.index[0])
    edited = original.copy()
    edited.loc[cid, "zip_place"] = "Hammerfest"
    results = dk.customers.apply(dk.customers.diff(original, edited), progress=False)
    assert results["outcome"].tolist() == ["updated"]
    assert dks.emulator("dokus").record("customers", cid)["zip_place"] == "Hammerfest"


def test_plan_and_results_hold_no_secret(dk: Any, dks: Sandbox) -> None:
    original = dk.products.list()
    edited = original.copy()
    edited.loc[original.index[0], "comment"] = "x"
    plan = dk.products.diff(original, edited)
    results = dk.products.apply(plan, progress=False)
    assert_clean(plan.to_string() + results.to_string() + results.summary, dks.secrets(), "plan/results")


def test_price_forms_in_a_plan_ambiguous_and_exponent_are_invalid_decimal_comma_is_read(dk: Any, dks: Sandbox) -> None:
    original = dk.products.list(product_number="KAF-")
    a, b, c, d = (int(i) for i in original.index[:4])
    edited = original.copy().astype({"price": object})
    edited.loc[a, "price"] = "1,500"
    edited.loc[b, "price"] = "1e3"
    edited.loc[c, "price"] = "1e400"
    edited.loc[d, "price"] = "199,50"
    plan = dk.products.diff(original, edited).set_index("id")
    assert plan.loc[a, "action"] == "invalid" and "1500.00 or 1,50" in plan.loc[a, "message"]
    assert plan.loc[b, "action"] == "invalid" and "1000.00" in plan.loc[b, "message"]
    assert plan.loc[c, "action"] == "invalid" and "exponent" in plan.loc[c, "message"]
    assert plan.loc[d, "action"] == "update" and plan.loc[d, "new"] == Decimal("199.50")
    results = dk.products.apply(plan.reset_index(), progress=False).set_index("id")
    assert results.loc[[a, b, c], "outcome"].tolist() == ["invalid"] * 3
    emulator = dks.emulator("dokus")
    assert [r.path for r in writes(dks)] == [f"/products/{d}/"] and emulator.record("products", d)["price"] == "199.50"


def test_negative_price_is_marked_in_the_plan_and_sent_only_when_marked(dk: Any, dks: Sandbox) -> None:
    original = dk.products.list(product_number="KAF-")
    a, b = (int(i) for i in original.index[:2])
    edited = original.copy()
    edited.loc[a, "price"] = Decimal("-20.00")
    edited.loc[b, "comment"] = "rabatt"
    plan = dk.products.diff(original, edited)
    assert "note" in plan.columns
    row = plan[plan["id"] == a].iloc[0]
    assert row["action"] == "update" and row["note"] == "negative price"
    assert (plan.loc[plan["id"] == b, "note"].fillna("") == "").all()
    # a plan whose negative price is not marked (made or changed by hand) is not sent
    unmarked = plan.copy()
    unmarked.loc[unmarked["id"] == a, "note"] = ""
    results = dk.products.apply(unmarked, progress=False).set_index("id")
    assert results.loc[a, "outcome"] == "invalid" and "negative price" in results.loc[a, "message"]
    assert dks.emulator("dokus").record("products", a)["price"] == format(original.loc[a, "price"], "f")
    results = dk.products.apply(plan, progress=False).set_index("id")
    assert results.loc[a, "outcome"] == "updated"
    assert dks.emulator("dokus").record("products", a)["price"] == "-20.00"


def test_new_rows_keep_the_analysts_labels_in_plan_and_results(dk: Any, dks: Sandbox) -> None:
    original = dk.products.list(product_number="KAF-")
    edited = original.copy()
    edited.loc["new 2"] = {"name": "Kaffe to", "price": Decimal("20.00"), "product_number": "KAF-L2"}
    edited.loc["espresso"] = {"name": "Espresso", "price": "35,00", "product_number": "KAF-L3"}
    plan = dk.products.diff(original, edited)
    assert plan["row"].unique().tolist() == ["new 2", "espresso"]
    results = dk.products.apply(plan, progress=False).set_index("row")
    assert results.loc[["new 2", "espresso"], "outcome"].tolist() == ["created", "created"]
    made = {r["product_number"]: r["id"] for r in dks.emulator("dokus").records("products")}
    assert results.loc["new 2", "id"] == made["KAF-L2"] and results.loc["espresso", "id"] == made["KAF-L3"]


def test_new_rows_with_the_same_label_twice_are_refused(dk: Any) -> None:
    original = dk.products.list(product_number="KAF-")
    extra = pd.DataFrame([{"name": "A", "price": Decimal("1.00")}, {"name": "B", "price": Decimal("2.00")}],
                         index=pd.Index(["ny", "ny"], name="id"))
    with pytest.raises(toolkit.ValidationError, match="more than once"):
        dk.products.diff(original, pd.concat([original, extra]))
