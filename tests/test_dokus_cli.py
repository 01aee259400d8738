"""``toolkit dokus products export|plan|apply`` against a sandbox over loopback: the sheet out, the analyst's
edits planned exactly, the question before anything is sent (``--yes``, a terminal, or a refusal), the
conflict refusal of ``dk.products.apply``, exit codes, no secret on the terminal."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import toolkit
from toolkit.cli import main
from toolkit.dokus.cli import APPLY_EXIT_CODES, NOT_CONFIRMED, PLAN_EXIT_CODES
from toolkit.sandbox import Sandbox

from .conftest import assert_clean

pytestmark = pytest.mark.integration
SANDBOX = ["--environment", "sandbox"]


@pytest.fixture
def dks(make_sandbox: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Sandbox:
    for name in ("SUBDOMAIN", "BASE_URL", "EMAIL", "PASSWORD", "ENVIRONMENT"):
        monkeypatch.delenv(f"TOOLKIT_DOKUS_{name}", raising=False)
    monkeypatch.chdir(tmp_path)
    return make_sandbox(services=["dokus"], seed=7)


@pytest.fixture
def dk(dks: Sandbox) -> Any:
    client = toolkit.dokus.connect(**dks.credentials("dokus"))
    yield client
    client.close()


def writes(sandbox: Sandbox) -> list[Any]:
    return [r for r in sandbox.emulator("dokus").requests if r.method in ("POST", "PUT", "PATCH", "DELETE")]


def no_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: False, raising=False)


def terminal_answering(monkeypatch: pytest.MonkeyPatch, answer: str, before: Any = None) -> list[str]:
    asked: list[str] = []

    def ask(prompt: str = "") -> str:
        asked.append(prompt)
        if before is not None:
            before()
        return answer

    monkeypatch.setattr("sys.stdin.isatty", lambda: True, raising=False)
    monkeypatch.setattr("builtins.input", ask)
    return asked


def edit_sheet(path: Path) -> tuple[int, int]:
    """A price raised and a name changed, as an analyst does in a spreadsheet (pandas stands in for Excel)."""
    sheet = pd.read_excel(path) if path.suffix == ".xlsx" else pd.read_csv(path, dtype=str)
    first, second = int(sheet.loc[0, "id"]), int(sheet.loc[1, "id"])
    sheet.loc[0, "price"] = "250.00" if path.suffix == ".csv" else 250.0
    sheet.loc[1, "name"] = str(sheet.loc[1, "name"]) + " (2. utgave)"
    if path.suffix == ".xlsx":
        sheet.to_excel(path, index=False)
    else:
        sheet.to_csv(path, index=False)
    return first, second


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_export_plan_apply_with_yes(dks: Sandbox, dk: Any, tmp_path: Path, suffix: str,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    sheet = tmp_path / f"products{suffix}"
    assert main(["dokus", "products", "export", sheet.name, *SANDBOX]) == 0
    assert sheet.exists() and f"written to {sheet.name}" in capsys.readouterr().out
    # untouched, the sheet plans nothing
    assert main(["dokus", "products", "plan", sheet.name, *SANDBOX]) == 0
    assert "no changes" in capsys.readouterr().out
    first, second = edit_sheet(sheet)
    before = dk.products.list()
    sent = len(writes(dks))
    out_csv = tmp_path / "plan.csv"
    assert main(["dokus", "products", "plan", sheet.name, *SANDBOX, "--out", str(out_csv)]) == 0
    printed = capsys.readouterr().out
    plan = pd.read_csv(out_csv, dtype=str)
    assert sorted(zip(plan["id"], plan["field"], plan["action"])) == [(str(first), "price", "update"),
                                                                      (str(second), "name", "update")]
    assert "250.00" in printed and "(2. utgave)" in printed and "update 2" in printed
    assert len(writes(dks)) == sent  # planning sends nothing
    assert main(["dokus", "products", "apply", sheet.name, *SANDBOX, "--yes", "--no-progress"]) == 0
    after = dk.products.list()
    assert after.loc[first, "price"] == Decimal("250.00")
    assert after.loc[second, "name"] == before.loc[second, "name"] + " (2. utgave)"
    others = [i for i in after.index if i not in (first, second)]
    assert after.loc[others, ["name", "price"]].equals(before.loc[others, ["name", "price"]])
    printed = capsys.readouterr()
    assert "updated 2" in printed.out
    assert main(["dokus", "products", "plan", sheet.name, *SANDBOX]) == 0  # applied: nothing left to do
    assert "no changes" in capsys.readouterr().out
    assert_clean(printed.out + printed.err, dks.secrets(), "the Dokus CLI's output")


def test_apply_without_a_terminal_and_without_yes_sends_nothing(dks: Sandbox, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dokus", "products", "export", "p.xlsx", *SANDBOX]) == 0
    edit_sheet(tmp_path / "p.xlsx")
    no_terminal(monkeypatch)
    sent = len(writes(dks))
    assert main(["dokus", "products", "apply", "p.xlsx", *SANDBOX]) == NOT_CONFIRMED
    printed = capsys.readouterr()
    assert "update 2" in printed.out  # the plan was shown
    assert "no terminal" in printed.err and "--yes" in printed.err
    assert len(writes(dks)) == sent


def test_apply_asks_on_a_terminal_and_no_sends_nothing(dks: Sandbox, dk: Any, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dokus", "products", "export", "p.xlsx", *SANDBOX]) == 0
    first, _ = edit_sheet(tmp_path / "p.xlsx")
    asked = terminal_answering(monkeypatch, "n")
    sent = len(writes(dks))
    assert main(["dokus", "products", "apply", "p.xlsx", *SANDBOX]) == NOT_CONFIRMED
    assert len(asked) == 1 and "2 products" in asked[0] and len(writes(dks)) == sent
    asked = terminal_answering(monkeypatch, "y")
    assert main(["dokus", "products", "apply", "p.xlsx", *SANDBOX, "--no-progress"]) == 0
    assert len(asked) == 1 and dk.products.get(first)["price"] == Decimal("250.00")


def test_a_product_changed_while_the_plan_is_looked_at_is_a_conflict(dks: Sandbox, dk: Any, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dokus", "products", "export", "p.xlsx", *SANDBOX]) == 0
    first, second = edit_sheet(tmp_path / "p.xlsx")
    colleague = toolkit.dokus.connect(**dks.credentials("dokus"))
    try:  # a colleague changes the price of the first product while the analyst reads the plan
        terminal_answering(monkeypatch, "y", before=lambda: colleague.products.update(first, price="199.00"))
        code = main(["dokus", "products", "apply", "p.xlsx", *SANDBOX, "--no-progress", "--report", "r.csv"])
    finally:
        colleague.close()
    assert code == 1 and APPLY_EXIT_CODES[1].startswith("some products are conflicts")
    rows = pd.read_csv(tmp_path / "r.csv", dtype=str).set_index("id")
    assert rows.loc[str(first), "outcome"] == "conflict" and rows.loc[str(second), "outcome"] == "updated"
    assert dk.products.get(first)["price"] == Decimal("199.00")  # the colleague's price stays
    assert "conflict" in capsys.readouterr().out


def test_a_colleagues_change_after_the_export_is_never_reverted(dks: Sandbox, dk: Any, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """The plan is made from the sheet and Dokus as it is now: a product a colleague changed after the export
    (the sheet's modification_time is older) is said in the plan and refused by apply, never sent back."""
    assert main(["dokus", "products", "export", "p.xlsx", *SANDBOX]) == 0
    first, second = edit_sheet(tmp_path / "p.xlsx")
    third = int(pd.read_excel(tmp_path / "p.xlsx").loc[2, "id"])
    dk.products.update(third, name="Endret av kollega")  # not touched in the sheet
    dk.products.update(first, comment="kollega")         # touched in the sheet (its price)
    capsys.readouterr()
    assert main(["dokus", "products", "plan", "p.xlsx", *SANDBOX, "--out", "plan.csv"]) == 0
    plan = pd.read_csv(tmp_path / "plan.csv", dtype=str)
    stale = plan[plan["id"].isin([str(first), str(third)])]
    assert len(stale) and stale["message"].str.contains("changed on Dokus since the sheet was read").all()
    code = main(["dokus", "products", "apply", "p.xlsx", *SANDBOX, "--yes", "--no-progress", "--report", "r.csv"])
    assert code == 1
    rows = pd.read_csv(tmp_path / "r.csv", dtype=str).set_index("id")
    assert rows.loc[str(first), "outcome"] == "conflict" and rows.loc[str(third), "outcome"] == "conflict"
    assert rows.loc[str(second), "outcome"] == "updated"
    assert dk.products.get(third)["name"] == "Endret av kollega"  # the colleague's edits stay
    assert dk.products.get(first)["comment"] == "kollega"


def test_invalid_edits_and_unreadable_sheets(dks: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dokus", "products", "export", "p.csv", *SANDBOX]) == 0
    sheet = pd.read_csv(tmp_path / "p.csv", dtype=str)
    sheet.loc[0, "price"] = "1,500"  # ambiguous: a thousands separator or a decimal comma?
    sheet.to_csv(tmp_path / "p.csv", index=False)
    capsys.readouterr()
    assert main(["dokus", "products", "plan", "p.csv", *SANDBOX]) == 2 and 2 in PLAN_EXIT_CODES
    assert "invalid" in capsys.readouterr().out
    sent = len(writes(dks))
    no_terminal(monkeypatch)
    assert main(["dokus", "products", "apply", "p.csv", *SANDBOX]) == 2  # nothing valid to send: not asked
    assert len(writes(dks)) == sent
    (tmp_path / "empty.csv").write_text("")
    assert main(["dokus", "products", "plan", "empty.csv", *SANDBOX]) == 3
    err = capsys.readouterr().err
    assert "empty.csv" in err and "Traceback" not in err
    assert main(["dokus", "products", "export", "p.txt", *SANDBOX]) == 3
    assert ".xlsx" in capsys.readouterr().err
