"""``toolkit uddata upload FOLDER`` and ``toolkit uddata audit CPRS.csv`` (the jar's replacement).

Connecting goes through core's one path, ``toolkit.core.service.connect("uddata", via="cli", …)``: the
options, then ``TOOLKIT_UDDATA_<FIELD>`` (environment, ``.env``, keyring), then the environment name.
``--environment sandbox`` finds a sandbox running in another process (``toolkit sandbox`` / ``./run lab``
write a discovery file, ``TOOLKIT_SANDBOX_FILE``) and takes its fake demo credentials for every field not
given. A missing field is named by its command-line flag and environment variable.

The client secret is read from ``TOOLKIT_UDDATA_CLIENT_SECRET`` (environment or ``.env``), the keyring,
the sandbox, or asked for with a hidden prompt — never taken from the command line, where every process
on the machine could see it.

Exit codes of ``upload``: 0 all uploaded (or already uploaded), 1 some failed, 2 some files skipped as
invalid (bad name, not a JPEG, duplicate CPR); 3 an error stopped the run. ``audit``: 0 done, 1 some
CPR numbers could not be checked (status ``error``/``deferred``), 2 some inputs are not CPR numbers
(numbers not on the roster, ``unknown_cpr``, are a result: listed in ``--out``, counted in the summary).
"""

from __future__ import annotations

import argparse
from typing import Any

from ..core import service as _service

__all__ = ["register"]


def _connection_options(p: argparse.ArgumentParser) -> None:
    _service.add_connection_options(p, "uddata")


def register(subparsers: Any) -> None:
    """Add ``toolkit uddata …`` to the ``toolkit`` command line."""
    uddata = subparsers.add_parser("uddata", help="Uddata+: upload a folder of photos, audit missing photos")
    sub = uddata.add_subparsers(dest="uddata_command", required=True)

    up = sub.add_parser("upload", help="upload every <cpr>.jpg of a folder (resumable)",
                        description="Upload every <cpr>.jpg / <cpr>.jpeg of FOLDER to Uddata+. The client secret "
                                    "comes from TOOLKIT_UDDATA_CLIENT_SECRET or a hidden prompt. Exit code 0: all "
                                    "uploaded; 1: some failed; 2: some files skipped as invalid.")
    up.add_argument("folder")
    _connection_options(up)
    up.add_argument("--concurrency", type=int, default=8)
    up.add_argument("--dry-run", action="store_true", help="check the files and show what would be sent")
    up.add_argument("--journal", help="journal file (default FOLDER/.uddata-upload.sqlite)")
    up.add_argument("--report", help="write one row per file to this CSV file")
    up.add_argument("--no-progress", action="store_true")
    up.set_defaults(func=_cmd_upload)

    au = sub.add_parser("audit", help="which CPR numbers lack a photo",
                        description="Check, for every CPR number of a CSV/Excel file, whether Uddata+ holds a photo.")
    au.add_argument("cprs", help="CSV/Excel/text file with CPR numbers (a 'cpr' column, or the first column)")
    _connection_options(au)
    au.add_argument("--concurrency", type=int, default=16)
    au.add_argument("--out", help="write the audit rows to this CSV file")
    au.add_argument("--missing", help="write only the CPR numbers without a photo to this CSV file")
    au.add_argument("--no-progress", action="store_true")
    au.set_defaults(func=_cmd_audit)


def _connect(args: argparse.Namespace) -> Any:
    return _service.connect_cli("uddata", args)


def _print_table(df: Any, columns: list[str], limit: int = 40) -> None:
    if len(df):
        shown = df[columns].head(limit)
        print(shown.to_string(index=False))  # masked view: no raw CPR on the terminal
        if len(df) > limit:
            print(f"… {len(df) - limit} more rows (use --report/--out for all)")


def _cmd_upload(args: argparse.Namespace) -> int:
    from .upload import exit_code

    with _connect(args) as ud:
        result = ud.upload_folder(args.folder, concurrency=args.concurrency, dry_run=args.dry_run,
                                  journal=args.journal, progress=not args.no_progress)
    if args.report:
        result.to_csv(args.report, index=False)
    problems = result[~result["outcome"].isin(["uploaded", "already_uploaded", "would_upload"])]
    _print_table(problems, ["file", "outcome", "http_status", "message"])
    if args.no_progress:  # with progress on, the run printed its one summary line already
        print(result.summary)
    return exit_code(result)


def _cmd_audit(args: argparse.Namespace) -> int:
    from .audit import missing, read_cprs

    cprs = read_cprs(args.cprs)  # a file that cannot be read is said before anything else
    with _connect(args) as ud:
        result = ud.audit(cprs, concurrency=args.concurrency, progress=not args.no_progress)
    if args.out:
        result.to_csv(args.out, index=False)
    if args.missing:
        missing(result)[["cpr"]].to_csv(args.missing, index=False)
    if args.no_progress:  # with progress on, the run printed its one summary line already
        print(result.summary)
    if result["status"].isin(["error", "deferred"]).fillna(False).any():
        return 1
    if (~result["valid"].fillna(False)).any():
        return 2
    return 0
