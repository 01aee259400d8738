"""``toolkit livingdocs import IMAGES.csv --system-name NAME [--wait] [--report FILE]``.

The access token is read from ``TOOLKIT_LIVINGDOCS_TOKEN`` (environment or ``.env``) or asked for with a
hidden prompt — never taken from the command line, where every process on the machine could see it. The
base URL comes from ``--base-url`` or ``TOOLKIT_LIVINGDOCS_BASE_URL``; ``--sandbox`` uses a sandbox running
in another process (``toolkit sandbox``), demo token included.

IMAGES.csv (or .xlsx / .json) has the columns ``url`` and ``id``, optionally ``fileName`` (or ``file_name``
/ ``title``), ``mediaType``, ``metadata`` (JSON text) and ``metadata.<name>`` columns. A CSV may be comma,
semicolon or tab separated, UTF-8 with or without a byte-order mark. A file that cannot be read (empty, a line
with more fields than the header, not a spreadsheet / JSON file) is one plain message naming the file (and
the line), exit code 3, before anything is sent.

Exit codes: 0 every image imported or skipped as unchanged (or, without ``--wait``, every chunk sent);
1 some images failed, or are in doubt (the answer of their import call was lost: run again with the same
rows); 2 some rows were invalid (not sent); 3 an error stopped the run.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..core import discovery as _discovery
from ..core.check import add_check_command
from ..core import service as _service
from ..core.errors import ValidationError
from ..core.tables import read_table

__all__ = ["register", "read_images"]


def register(subparsers: Any) -> None:
    """Add ``toolkit livingdocs …`` to the ``toolkit`` command line."""
    ld = subparsers.add_parser("livingdocs", help="Livingdocs: import images by URL into the media library")
    sub = ld.add_subparsers(dest="livingdocs_command", required=True)
    add_check_command(sub, "livingdocs", options=(  # toolkit livingdocs check: the live contract check
        ("--system-name", "the system name of an imported image whose media library entry is compared"),
        ("--external-id", "the external id of that image (with --system-name)")))
    imp = sub.add_parser("import", help="import the images of a CSV file",
                         description="Import every row (url, id, fileName, metadata …) of IMAGES.csv into the "
                                     "Livingdocs media library. The token comes from TOOLKIT_LIVINGDOCS_TOKEN or a "
                                     "hidden prompt. Exit code 0: all imported/skipped; 1: some failed; 2: some "
                                     "rows invalid; 3: an error stopped the run.")
    imp.add_argument("images", help="CSV, Excel or JSON file with url and id columns")
    imp.add_argument("--system-name", required=True, help="the source system's name (with the ids it identifies "
                                                          "each image)")
    _service.add_connection_options(imp, "livingdocs")
    imp.add_argument("--sandbox", action="store_true", help="use the sandbox running in another process")
    imp.add_argument("--chunk-size", type=int, default=100)
    imp.add_argument("--journal", help="journal file: a second run re-attaches to the jobs it recorded")
    imp.add_argument("--wait", action="store_true", help="wait for the jobs and report one row per image")
    imp.add_argument("--timeout", type=float, default=600.0, help="seconds to wait with --wait")
    imp.add_argument("--report", help="write the result rows (or, without --wait, the jobs) to this CSV file")
    imp.add_argument("--no-progress", action="store_true")
    imp.set_defaults(func=_cmd_import)


def read_images(path: str) -> Any:
    """The rows of a CSV, Excel or JSON file of images, ``id`` as text (leading zeros kept), other values as
    the file types them (metadata numbers stay numbers; a JSON file's ``metadata`` objects stay objects).

    A file that cannot be read — empty, a row with more fields than the header (the line is named), not
    UTF-8, a spreadsheet or JSON file that is not one — is a :class:`ValidationError` naming the file and
    saying what to do (core :func:`~toolkit.core.tables.read_table`), never the reader's own exception.
    """
    return read_table(path, service="livingdocs", text=("id",), what="url and id columns")


def _connect(args: argparse.Namespace) -> Any:
    from . import connect

    if args.sandbox:
        sb = _discovery.discover("livingdocs")
        if sb is None:
            raise ValidationError("no sandbox is running", service="livingdocs",
                                  hint="Start one with `toolkit sandbox` in another terminal, or give --base-url.")
        kwargs = dict(sb.credentials("livingdocs"))
        if args.api_version:
            kwargs["api_version"] = args.api_version
        return connect(**kwargs)
    return _service.connect_cli("livingdocs", args)


def _cmd_import(args: argparse.Namespace) -> int:
    images = read_images(args.images)
    with _connect(args) as lv:
        job = lv.import_images(images, system_name=args.system_name, chunk_size=args.chunk_size,
                               journal=args.journal, progress=not args.no_progress)
        print(f"Livingdocs: {len(job.ids)} import job(s): {', '.join(job.ids) or 'none'}")
        if not args.wait:
            status = job.status()
            if args.report:
                status.to_csv(args.report, index=False)
            if len(status):
                print(status.to_string(index=False))
            results = [r for r in job.result_rows() if r.get("job_id") is None]
            invalid = sum(1 for r in results if r["status"] == "invalid")
            unsent = sum(1 for r in results if r["status"] == "failed")
            doubt = sum(1 for r in results if r["status"] == "in_doubt")
            print(f"{invalid} invalid row(s) not sent; {unsent} row(s) could not be sent"
                  + (f"; {doubt} row(s) in doubt (the answer was lost: run again to be sure)" if doubt else "")
                  + ". Follow the jobs with --wait, or in Python: lv.job(id).")
            return 1 if unsent or doubt else 2 if invalid else 0
        job.wait(timeout=args.timeout, progress=not args.no_progress)
        res = job.results()
    if args.report:
        res.to_csv(args.report, index=False)
    problems = res[res["status"].isin(["failed", "in_doubt", "invalid"])]
    if len(problems):
        with __import__("pandas").option_context("display.max_colwidth", 120):
            print(problems[["external_id", "status", "reason", "job_id"]].head(40).to_string(index=False))
        if len(problems) > 40:
            print(f"… {len(problems) - 40} more (use --report for all)")
    print(res.attrs.get("summary", ""))
    if res["status"].isin(["failed", "in_doubt"]).any():
        return 1
    if (res["status"] == "invalid").any():
        return 2
    return 0
