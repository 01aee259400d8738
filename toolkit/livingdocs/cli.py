"""``toolkit livingdocs import IMAGES.csv --system-name NAME [--wait] [--report FILE]``.

The access token is read from ``TOOLKIT_LIVINGDOCS_TOKEN`` (environment or ``.env``) or asked for with a
hidden prompt — never taken from the command line, where every process on the machine could see it. The
base URL comes from ``--base-url`` or ``TOOLKIT_LIVINGDOCS_BASE_URL``; ``--environment sandbox`` uses a sandbox
running in another process (``./run sandbox``, ``./run lab``), demo token included (``--sandbox``, its earlier
spelling, still works with a note).

IMAGES.csv (or .xlsx / .json) has the columns ``url`` and ``id``, optionally ``fileName`` (or ``file_name``
/ ``title``), ``mediaType``, ``metadata`` (JSON text) and ``metadata.<name>`` columns. A CSV may be comma,
semicolon or tab separated, UTF-8 with or without a byte-order mark. A file that cannot be read (empty, a line
with more fields than the header, not a spreadsheet / JSON file) is one plain message naming the file (and
the line), exit code 3, before anything is sent.

Exit codes: :data:`IMPORT_EXIT_CODES`, the same in ``--help`` and the README.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..core import cli
from ..core.check import add_check_command
from ..core.tables import read_table

__all__ = ["register", "read_images"]


#: the exit codes of ``toolkit livingdocs import`` (with those of every verb: 2 usage, 130 Ctrl-C)
IMPORT_EXIT_CODES = {0: "every image imported or skipped as unchanged (without --wait: every chunk sent)",
                     1: "some images failed, or are in doubt (their answer was lost: run again with the same rows)",
                     2: "some rows were invalid (not sent)",
                     3: "an error stopped the run (also a file that cannot be read, before anything is sent)"}


def register(subparsers: Any) -> None:
    """Add ``toolkit livingdocs …`` to the ``toolkit`` command line."""
    from .client import Client

    ld = subparsers.add_parser("livingdocs", help="Livingdocs: import images by URL into the media library")
    sub = ld.add_subparsers(dest="livingdocs_command", required=True, metavar="VERB")
    add_check_command(sub, "livingdocs", options=(  # toolkit livingdocs check: the live contract check
        ("--system-name", "the system name of an imported image whose media library entry is compared"),
        ("--external-id", "the external id of that image (with --system-name)")))
    imp = cli.add_verb(sub, "import", help="import the images of a CSV file",
                       description="Import every row (url, id, fileName, metadata …) of IMAGES.csv into the "
                                   "Livingdocs media library. The token comes from TOOLKIT_LIVINGDOCS_TOKEN or a "
                                   "hidden prompt.", codes=IMPORT_EXIT_CODES, func=_cmd_import)
    imp.add_argument("images", help="CSV, Excel or JSON file with url and id columns")
    imp.add_argument("--system-name", required=True, help="the source system's name (with the ids it identifies "
                                                          "each image)")
    cli.add_connection(imp, "livingdocs")
    imp.add_argument("--chunk-size", type=int, default=100,
                     help="images per import call, one server job each (default 100)")
    imp.add_argument("--journal", help="journal file: a second run re-attaches to the jobs it recorded")
    imp.add_argument("--wait", action="store_true", help="wait for the jobs and report one row per image")
    imp.add_argument("--timeout", type=float, default=600.0, help="seconds to wait with --wait (default 600)")
    imp.add_argument("--report", help="write the result rows (or, without --wait, the jobs) to this CSV file")
    cli.add_concurrency(imp, "import calls in flight", Client.import_images)
    cli.add_no_progress(imp)


def read_images(path: str) -> Any:
    """The rows of a CSV, Excel or JSON file of images, ``id`` as text (leading zeros kept), other values as
    the file types them (metadata numbers stay numbers; a JSON file's ``metadata`` objects stay objects).

    A file that cannot be read — empty, a row with more fields than the header (the line is named), not
    UTF-8, a spreadsheet or JSON file that is not one — is a :class:`ValidationError` naming the file and
    saying what to do (core :func:`~toolkit.core.tables.read_table`), never the reader's own exception.
    """
    return read_table(path, service="livingdocs", text=("id",), what="url and id columns")


def _cmd_import(args: argparse.Namespace) -> int:
    images = read_images(args.images)
    with cli.connect("livingdocs", args) as lv:
        job = lv.import_images(images, system_name=args.system_name, chunk_size=args.chunk_size,
                               journal=args.journal, **cli.bulk_options(args))
        print(f"Livingdocs: {len(job.ids)} import job(s): {', '.join(job.ids) or 'none'}")
        if not args.wait:
            status = job.status()
            if args.report:
                status.to_csv(args.report, index=False)
            if len(status):
                print(status.to_string(index=False))
            results = [r for r in job.result_rows() if r.get("job_id") is None]
            invalid = sum(1 for r in results if r["outcome"] == "invalid")
            unsent = sum(1 for r in results if r["outcome"] == "failed")
            doubt = sum(1 for r in results if r["outcome"] == "in_doubt")
            print(f"{invalid} invalid row(s) not sent; {unsent} row(s) could not be sent"
                  + (f"; {doubt} row(s) in doubt (the answer was lost: run again to be sure)" if doubt else "")
                  + ". Follow the jobs with --wait, or in Python: lv.job(id).")
            return 1 if unsent or doubt else 2 if invalid else 0
        job.wait(timeout=args.timeout, progress=not args.no_progress)
        res = job.results()
    if args.report:
        res.to_csv(args.report, index=False)
    problems = res[res["outcome"].isin(["failed", "in_doubt", "invalid"])]
    if len(problems):
        with __import__("pandas").option_context("display.max_colwidth", 120):
            print(problems[["external_id", "outcome", "message", "job_id"]].head(40).to_string(index=False))
        if len(problems) > 40:
            print(f"… {len(problems) - 40} more (use --report for all)")
    print(res.attrs.get("summary", ""))
    if res["outcome"].isin(["failed", "in_doubt"]).any():
        return 1
    if (res["outcome"] == "invalid").any():
        return 2
    return 0
