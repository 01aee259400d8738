"""Dokus value rules (toolkit.dokus.values): money forms an analyst types, and the one-way imports."""

from __future__ import annotations

import ast
from decimal import Decimal
from pathlib import Path

import pytest

import toolkit

DOKUS = Path(toolkit.__file__).resolve().parent / "dokus"


def _imports(name: str) -> set[str]:
    """Every module a file of toolkit/dokus imports (also under TYPE_CHECKING), relative names resolved."""
    tree = ast.parse((DOKUS / f"{name}.py").read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                out.add(f"toolkit.dokus.{node.module}" if node.module else "toolkit.dokus")
                if not node.module:
                    out.update(f"toolkit.dokus.{a.name}" for a in node.names)
            elif node.level == 0 and node.module:
                out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_imports_go_one_way_values_edits_resources() -> None:
    values, edits, resources = _imports("values"), _imports("edits"), _imports("resources")
    assert not {m for m in values if m.startswith("toolkit.dokus")}, values
    assert {m for m in edits if m.startswith("toolkit.dokus")} <= {"toolkit.dokus.values"}, edits
    assert "toolkit.dokus.client" not in resources, resources


def test_public_names_stay_where_they_were() -> None:
    from toolkit.dokus import OUTCOMES, RESOURCES, Resource, ResourceSpec, round_money
    from toolkit.dokus import edits, values

    assert edits.round_money is values.round_money is round_money
    assert edits.OUTCOMES == OUTCOMES and "conflict" in OUTCOMES
    assert isinstance(RESOURCES["products"], ResourceSpec) and callable(Resource.raw_get)


@pytest.mark.parametrize("text, amount", [
    ("199,50", "199.50"), ("199.50", "199.50"), ("1 500,50", "1500.50"), ("1\u00a0500,50", "1500.50"),
    ("1.500,50", "1500.50"), ("1,500.50", "1500.50"), ("1500", "1500.00"), ("  49.9 ", "49.90"),
    ("0,500", "0.50"), ("1234,5", "1234.50"), ("1 500", "1500.00"), (Decimal("12.3"), "12.30"), (7, "7.00"),
])
def test_unambiguous_forms_are_read(text: object, amount: str) -> None:
    from toolkit.dokus.values import parse_money

    value, _ = parse_money(text)
    assert value == Decimal(amount) and str(value) == amount


@pytest.mark.parametrize("text, says", [
    ("1,500", "1500.00 or 1,50"), ("1.500", "1500.00 or 1,50"), ("12,345", "12345.00"),
    ("1e3", "1000.00"), ("1E3", "1000.00"), ("1e400", "exponent"), ("2.5e-1", "exponent"),
    ("NaN", "not a number"), ("inf", "not a number"), ("-Infinity", "not a number"),
    (Decimal("NaN"), "not a number"), (float("inf"), "not a number"), (Decimal("1E+400"), "too large"),
    (1e300, "too large"), ("12,50,00", "write"), ("1.5.0", "write"), ("gratis", "not an amount"),
    ("1 50,00", "write"), (True, "not an amount"),
])
def test_ambiguous_exponent_and_non_numbers_are_refused_with_what_to_write(text: object, says: str) -> None:
    from toolkit.dokus.values import BadValue, parse_money

    with pytest.raises(BadValue) as info:
        parse_money(text)
    assert says in str(info.value)
    assert "write" in str(info.value) or "not an amount" in str(info.value) or "not a number" in str(info.value)


def test_floats_are_read_from_their_shortest_repr_and_noted() -> None:
    from toolkit.dokus.values import parse_money

    value, note = parse_money(0.1 + 0.2)
    assert value == Decimal("0.30") and note and "float" in note
    assert parse_money(None) == (None, None) and parse_money(float("nan")) == (None, None)
    assert parse_money(Decimal("209.475")) == (Decimal("209.48"), "209.475 rounded half up to øre: 209.48")
