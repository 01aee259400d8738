"""``toolkit dokus products export|plan|apply FILE`` and ``toolkit dokus check``.

    toolkit dokus products export products.xlsx --environment sandbox    # the products, to edit in a spreadsheet
    toolkit dokus products plan products.xlsx --environment sandbox      # the edits, as a table; nothing is sent
    toolkit dokus products apply products.xlsx --environment sandbox     # the plan, a question, then the changes

``export`` writes the products to ``.xlsx`` or ``.csv`` (:func:`toolkit.dokus.sheets.write_sheet`, through
``dk.products.export``). ``plan`` reads the edited sheet back (:func:`toolkit.dokus.sheets.read_sheet`), reads
the products from Dokus as they are now and shows ``dk.products.diff(products, sheet)``: exactly the edits
that ``apply`` would send. ``apply`` shows the same plan, asks for confirmation on a terminal (``--yes``
answers for you; without a terminal and without ``--yes`` nothing is sent) and sends it with
``dk.products.apply``: a product changed on Dokus after it was read is a ``conflict`` row and is not sent.

The password is read from ``TOOLKIT_DOKUS_PASSWORD`` (environment, ``.env``, keyring) or asked for with a
hidden prompt — never taken from the command line. Exit codes: :data:`EXPORT_EXIT_CODES`,
:data:`PLAN_EXIT_CODES`, :data:`APPLY_EXIT_CODES` (and ``check``'s), the same in each verb's ``--help`` and
the README.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..core import cli
from ..core.check import add_check_command

__all__ = ["register", "EXPORT_EXIT_CODES", "PLAN_EXIT_CODES", "APPLY_EXIT_CODES", "NOT_CONFIRMED"]

SERVICE = "dokus"
NOT_CONFIRMED = 4
EXPORT_EXIT_CODES = {0: "the sheet is written", 3: "an error stopped the run (nothing is written)"}
PLAN_EXIT_CODES = {0: "the plan is shown (nothing is sent)",
                   2: "some edits are invalid (they would not be sent: see the message column)",
                   3: "an error stopped the run (e.g. a sheet that cannot be read, a read-only column changed)"}
APPLY_EXIT_CODES = {0: "every change applied (or nothing to change)",
                    1: "some products are conflicts (changed on Dokus after they were read: nothing sent for "
                       "them) or failed",
                    2: "some edits were invalid (not sent)",
                    3: "an error stopped the run (nothing sent, unless the rows say otherwise)",
                    NOT_CONFIRMED: "not confirmed: answered no, or no terminal to ask and no --yes (nothing sent)"}
PLAN_COLUMNS = ["row", "field", "old", "new", "action", "message"]
DONE = ("updated", "created", "deleted")


def register(subparsers: Any) -> None:
    """Add ``toolkit dokus …`` to the ``toolkit`` command line."""
    from .resources import Resource

    dokus = subparsers.add_parser("dokus", help="Dokus: products to a spreadsheet and back, the contract check")
    sub = dokus.add_subparsers(dest="dokus_command", required=True, metavar="VERB")
    add_check_command(sub, SERVICE)
    products = sub.add_parser("products", help="export the products to a sheet, plan and apply its edits")
    verbs = products.add_subparsers(dest="products_command", required=True, metavar="VERB")
    ex = cli.add_verb(verbs, "export", help="write the products to FILE.xlsx or FILE.csv",
                      description="Write Dokus' products to FILE (.xlsx for Excel or LibreOffice, or .csv): the id "
                                  "and the columns you may edit. Edit it, then `toolkit dokus products plan FILE`.",
                      codes=EXPORT_EXIT_CODES, func=_cmd_export)
    ex.add_argument("file", help="the sheet to write, ending in .xlsx or .csv (replaced if it exists)")
    cli.add_connection(ex, SERVICE)
    pl = cli.add_verb(verbs, "plan", help="show the edits of a sheet as a table (nothing is sent)",
                      description="Read the edited sheet, read the products from Dokus as they are now, and show "
                                  "exactly the edits `apply` would send, one row per changed field.",
                      codes=PLAN_EXIT_CODES, func=_cmd_plan)
    pl.add_argument("file", help="the edited sheet (.xlsx or .csv, as export wrote it)")
    cli.add_connection(pl, SERVICE)
    pl.add_argument("--out", help="write the plan to this CSV file")
    ap = cli.add_verb(verbs, "apply", help="show the plan, ask, then send the edits of a sheet",
                      description="Show the plan of the edited sheet (as `plan` does), ask for confirmation, and "
                                  "send it. A product changed on Dokus after it was read is a conflict and is not "
                                  "sent: export again and redo the edit.",
                      codes=APPLY_EXIT_CODES, func=_cmd_apply)
    ap.add_argument("file", help="the edited sheet (.xlsx or .csv, as export wrote it)")
    cli.add_connection(ap, SERVICE)
    ap.add_argument("--yes", action="store_true",
                    help="apply without asking (needed where no terminal can answer, e.g. in a script)")
    cli.add_concurrency(ap, "products sent", Resource.apply)
    ap.add_argument("--report", help="write one result row per product to this CSV file")
    cli.add_no_progress(ap)


def _cmd_export(args: argparse.Namespace) -> int:
    with cli.connect(SERVICE, args) as dk:
        table = dk.products.export(args.file)
    print(table.attrs.get("summary") or f"Dokus products: {len(table)} written to {args.file}")
    return 0


def _plan(dk: Any, path: str, edited: Any) -> Any:
    """The plan of the sheet against the products as Dokus has them now (``diff(original, edited)``)."""
    plan = dk.products.diff(dk.products.list(), edited)
    if len(plan):
        print(plan[PLAN_COLUMNS].to_string(index=False))
    print(plan.attrs.get("summary", "") + f" (from {path})")
    return plan


def _cmd_plan(args: argparse.Namespace) -> int:
    from .sheets import read_sheet

    edited = read_sheet(args.file, service=SERVICE)  # a sheet that cannot be read is said before connecting
    with cli.connect(SERVICE, args) as dk:
        plan = _plan(dk, args.file, edited)
    if args.out:
        plan.to_csv(args.out, index=False)
    return 2 if (plan["action"] == "invalid").any() else 0


def _confirmed(args: argparse.Namespace, plan: Any) -> bool:
    """--yes, or "y" typed on a terminal; without a terminal and without --yes: no (said on stderr)."""
    if args.yes:
        return True
    stdin = sys.stdin
    if stdin is None or not stdin.isatty():
        print("not applied: no terminal to ask for confirmation. Check the plan above (or run `toolkit dokus "
              "products plan`) and run again with --yes to apply it.", file=sys.stderr)
        return False
    items = plan.loc[plan["action"] != "invalid", "row"].nunique()
    answer = input(f"Apply these changes to {items} product{'s' if items != 1 else ''} on Dokus? [y/N] ")
    if answer.strip().lower() in ("y", "yes", "j", "ja"):
        return True
    print("not applied: nothing was sent.", file=sys.stderr)
    return False


def _cmd_apply(args: argparse.Namespace) -> int:
    from .sheets import read_sheet

    edited = read_sheet(args.file, service=SERVICE)
    with cli.connect(SERVICE, args) as dk:
        plan = _plan(dk, args.file, edited)
        if not (plan["action"] != "invalid").any():
            print("Nothing to apply.")
            return 2 if len(plan) else 0
        if not _confirmed(args, plan):
            return NOT_CONFIRMED
        result = dk.products.apply(plan, **cli.bulk_options(args))
    if args.report:
        result.to_csv(args.report, index=False)
    problems = result[~result["outcome"].isin(DONE)]
    if len(problems):
        print(problems[["row", "action", "outcome", "message"]].to_string(index=False))
    if args.no_progress:  # with progress on, the run printed its one summary line already
        print(result.attrs.get("summary", ""))
    outcomes = set(result["outcome"].dropna())
    if outcomes & {"conflict", "failed"}:
        return 1
    return 2 if "invalid" in outcomes else 0
