"""``toolkit mediaflow latest``, ``toolkit mediaflow search TEXT`` and
``toolkit mediaflow upload FOLDER --folder-id ID``.

The client secret and the refresh token are read from ``TOOLKIT_MEDIAFLOW_CLIENT_SECRET`` /
``TOOLKIT_MEDIAFLOW_REFRESH_TOKEN`` (environment, ``.env``, keyring) or asked for with a hidden prompt —
never taken from the command line, where every process on the machine could see them. The client id
and the base URL come from ``--client-id`` / ``--base-url`` / ``--environment`` or ``TOOLKIT_MEDIAFLOW_<FIELD>``.

Exit codes: :data:`LIST_EXIT_CODES` (``latest``, ``search``) and :data:`UPLOAD_EXIT_CODES`, the same in each
verb's ``--help`` and the README.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..core import cli
from ..core.check import add_check_command

__all__ = ["register"]

SERVICE = "mediaflow"


SECRETS = "Secrets come from TOOLKIT_MEDIAFLOW_CLIENT_SECRET / TOOLKIT_MEDIAFLOW_REFRESH_TOKEN or a hidden prompt."
ERROR = "an error stopped the run (refused credentials, a bad argument, Mediaflow unreachable)"
#: the exit codes of each verb (with those of every verb: 2 usage, 130 Ctrl-C)
LIST_EXIT_CODES = {0: "done: the files are listed (none found is not an error)", 3: ERROR}
UPLOAD_EXIT_CODES = {0: "all uploaded (or already there)",
                     1: "some files failed or are in doubt: run it again, nothing is sent twice",
                     2: "some entries of the folder were not sent because of their kind (hidden, folder, link, "
                        "not_a_file)", 3: ERROR}


def register(subparsers: Any) -> None:
    """Add ``toolkit mediaflow …`` to the ``toolkit`` command line."""
    from .client import Client

    mf = subparsers.add_parser("mediaflow", help="Mediaflow: list the latest files, search, upload a folder")
    sub = mf.add_subparsers(dest="mediaflow_command", required=True, metavar="VERB")
    add_check_command(sub, SERVICE)  # toolkit mediaflow check: the live contract check

    la = cli.add_verb(sub, "latest", help="the latest files, newest first",
                      description="List the latest files of Mediaflow, newest first. " + SECRETS,
                      codes=LIST_EXIT_CODES, func=_cmd_latest)
    cli.add_connection(la, SERVICE)
    la.add_argument("--limit", type=int, default=100, help="at most this many files (default 100)")
    la.add_argument("--type", default="image", help="image (default), video, document … or any")
    la.add_argument("--out", help="write the table to this CSV file")

    se = cli.add_verb(sub, "search", help="search the files, in Mediaflow's order",
                      description="Search Mediaflow's files for TEXT (every word must be found in the name, "
                                  "description, alt text or photographer), in the order Mediaflow gives them. "
                                  + SECRETS, codes=LIST_EXIT_CODES, func=_cmd_search)
    se.add_argument("text", help="the words to search for, e.g. \"sommar stockholm\" (quote several words)")
    cli.add_connection(se, SERVICE)
    se.add_argument("--type", default=None, help="keep only files of this type: image, video, document … "
                                                 "(default: every type)")
    se.add_argument("--folder-id", type=int, default=None,
                    help="keep only files directly in this Mediaflow folder (an id, may be negative)")
    se.add_argument("--limit", type=int, default=100, help="at most this many files (default 100)")
    se.add_argument("--out", help="write the table to this CSV file")

    up = cli.add_verb(sub, "upload", help="upload every file of a folder (resumable)",
                      description="Upload every file directly in FOLDER to the Mediaflow folder --folder-id. "
                                  "A re-run sends nothing twice (journal FOLDER/.mediaflow-upload.sqlite). "
                                  "Symbolic links are never followed. " + SECRETS,
                      codes=UPLOAD_EXIT_CODES, func=_cmd_upload)
    up.add_argument("folder", help="the local folder whose files are uploaded (not those of sub-folders)")
    up.add_argument("--folder-id", required=True, type=int, help="the Mediaflow folder id (may be negative)")
    cli.add_connection(up, SERVICE)
    cli.add_concurrency(up, "files in flight", Client.upload_folder)
    up.add_argument("--dry-run", action="store_true", help="show what would be sent; send nothing")
    up.add_argument("--journal", help="journal file (default FOLDER/.mediaflow-upload.sqlite)")
    up.add_argument("--report", help="write one row per file to this CSV file")
    cli.add_no_progress(up)


def _cmd_latest(args: argparse.Namespace) -> int:
    with cli.connect(SERVICE, args) as mf:
        df = mf.latest(type=args.type, limit=args.limit)
    if args.out:
        df.to_csv(args.out, index=False)
    shown = [c for c in ("id", "title", "type", "extension", "bytes", "created", "uploaded_by") if c in df.columns]
    if len(df):
        print(df[shown].head(40).to_string(index=False))
    print(f"Mediaflow: {len(df)} file{'s' if len(df) != 1 else ''}" + (f" written to {args.out}" if args.out else ""))
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    with cli.connect(SERVICE, args) as mf:
        df = mf.search(args.text, type=args.type, folder_id=args.folder_id, limit=args.limit)
    if args.out:
        df.to_csv(args.out, index=False)
    shown = [c for c in ("id", "title", "type", "extension", "bytes", "created") if c in df.columns]
    if len(df):
        print(df[shown].head(40).to_string(index=False))
    found = f"{len(df)} file{'s' if len(df) != 1 else ''}"
    print(f"Mediaflow: {found} found" + (f", written to {args.out}" if args.out else ""))
    return 0


def _cmd_upload(args: argparse.Namespace) -> int:
    from .uploads import exit_code

    with cli.connect(SERVICE, args) as mf:
        result = mf.upload_folder(args.folder, args.folder_id, dry_run=args.dry_run, journal=args.journal,
                                  **cli.bulk_options(args))
    if args.report:
        result.to_csv(args.report, index=False)
    problems = result[~result["outcome"].isin(["uploaded", "already_uploaded", "would_upload"])]
    if len(problems):
        print(problems[["file", "outcome", "http_status", "message"]].head(40).to_string(index=False))
    print(result.summary)
    return exit_code(result)
