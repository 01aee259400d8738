"""``toolkit uddata upload FOLDER`` and ``toolkit uddata audit CPRS.csv`` (the jar's replacement).

The client secret is read from ``TOOLKIT_UDDATA_CLIENT_SECRET`` (environment or ``.env``) or asked for
with a hidden prompt — never taken from the command line, where every process on the machine could see
it. The other connection fields come from the options or ``TOOLKIT_UDDATA_<FIELD>``.

Exit codes of ``upload``: 0 all uploaded (or already uploaded), 1 some failed, 2 some files skipped as
invalid (bad name, not a JPEG, duplicate CPR); 3 an error stopped the run. ``audit``: 0 done, 1 some
CPR numbers could not be checked, 2 some inputs are not CPR numbers.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from ..core.credentials import Secret, load_credentials
from ..core.errors import ValidationError

__all__ = ["register"]


def _connection_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--environment", help="production, test, sandbox … (default: TOOLKIT_UDDATA_ENVIRONMENT "
                                         "or production)")
    p.add_argument("--institution", help="institution number (6 digits)")
    p.add_argument("--api-version", help="API version, default 0.7.5")
    p.add_argument("--client-id", help="API client id")
    p.add_argument("--base-url", help="base URL (overrides --environment)")
    p.add_argument("--token-url", help="token URL (default {base}/oauth/token)")


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
    from . import connect

    creds = load_credentials("uddata", environment=args.environment, institution=args.institution,
                             api_version=args.api_version, client_id=args.client_id, base_url=args.base_url,
                             token_url=args.token_url)
    kwargs = creds.to_kwargs()
    if not kwargs.get("client_secret"):
        if not sys.stdin.isatty():
            raise ValidationError("no client secret", service="uddata",
                                  hint="Set TOOLKIT_UDDATA_CLIENT_SECRET (environment or .env), or run in a "
                                       "terminal to be asked for it.")
        kwargs["client_secret"] = Secret(getpass.getpass("Uddata+ client secret (hidden): "))
    kwargs.setdefault("api_version", "0.7.5")
    return connect(**kwargs)


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
    print(result.summary)
    return exit_code(result)


def _cmd_audit(args: argparse.Namespace) -> int:
    from .audit import missing

    with _connect(args) as ud:
        result = ud.audit(args.cprs, concurrency=args.concurrency, progress=not args.no_progress)
    if args.out:
        result.to_csv(args.out, index=False)
    if args.missing:
        missing(result)[["cpr"]].to_csv(args.missing, index=False)
    print(result.summary)
    if result["error"].notna().any() and (result["valid"].fillna(False) & result["has_image"].isna()).any():
        return 1
    if (~result["valid"].fillna(False)).any():
        return 2
    return 0
