"""``toolkit mediaflow latest``, ``toolkit mediaflow search TEXT`` and
``toolkit mediaflow upload FOLDER --folder-id ID``.

The client secret and the refresh token are read from ``TOOLKIT_MEDIAFLOW_CLIENT_SECRET`` /
``TOOLKIT_MEDIAFLOW_REFRESH_TOKEN`` (environment, ``.env``, keyring) or asked for with a hidden prompt —
never taken from the command line, where every process on the machine could see them. The client id
and the base URL come from ``--client-id`` / ``--base-url`` / ``--environment`` or ``TOOLKIT_MEDIAFLOW_<FIELD>``.

Exit codes (the same convention for every verb): 0 done — ``latest`` and ``search`` listed the files (an empty
result is not an error), ``upload`` uploaded all (or they were already there); 1 some files failed or are in
doubt (``upload``: run it again, nothing is sent twice); 2 some entries of the folder were not sent because
of their kind (hidden, folder, link, not_a_file); 3 an error stopped the run (refused credentials, a bad
argument, Mediaflow unreachable).
"""

from __future__ import annotations

import argparse
from typing import Any

from ..core.check import add_check_command
from ..core import service as _service

__all__ = ["register"]

SERVICE = "mediaflow"


def _connection_options(p: argparse.ArgumentParser) -> None:
    _service.add_connection_options(p, SERVICE)


def register(subparsers: Any) -> None:
    """Add ``toolkit mediaflow …`` to the ``toolkit`` command line."""
    mf = subparsers.add_parser("mediaflow", help="Mediaflow: list the latest files, search, upload a folder")
    sub = mf.add_subparsers(dest="mediaflow_command", required=True)
    add_check_command(sub, SERVICE)  # toolkit mediaflow check: the live contract check

    la = sub.add_parser("latest", help="the latest files, newest first",
                        description="List the latest files of Mediaflow, newest first. Secrets come from "
                                    "TOOLKIT_MEDIAFLOW_CLIENT_SECRET / TOOLKIT_MEDIAFLOW_REFRESH_TOKEN or a hidden prompt.")
    _connection_options(la)
    la.add_argument("--limit", type=int, default=100, help="at most this many files (default 100)")
    la.add_argument("--type", default="image", help="image (default), video, document … or any")
    la.add_argument("--out", help="write the table to this CSV file")
    la.set_defaults(func=_cmd_latest)

    se = sub.add_parser("search", help="search the files, in Mediaflow's order",
                        description="Search Mediaflow's files for TEXT (every word must be found in the name, "
                                    "description, alt text or photographer), in the order Mediaflow gives them. "
                                    "Secrets come from TOOLKIT_MEDIAFLOW_CLIENT_SECRET / "
                                    "TOOLKIT_MEDIAFLOW_REFRESH_TOKEN or a hidden prompt. Exit code 0: searched "
                                    "(also when nothing was found); 3: an error stopped it.")
    se.add_argument("text", help="the words to search for, e.g. \"sommar stockholm\" (quote several words)")
    _connection_options(se)
    se.add_argument("--type", default=None, help="keep only files of this type: image, video, document … "
                                                 "(default: every type)")
    se.add_argument("--folder-id", type=int, default=None,
                    help="keep only files directly in this Mediaflow folder (an id, may be negative)")
    se.add_argument("--limit", type=int, default=100, help="at most this many files (default 100)")
    se.add_argument("--out", help="write the table to this CSV file")
    se.set_defaults(func=_cmd_search)

    up = sub.add_parser("upload", help="upload every file of a folder (resumable)",
                        description="Upload every file directly in FOLDER to the Mediaflow folder --folder-id. "
                                    "A re-run sends nothing twice (journal FOLDER/.mediaflow-upload.sqlite). "
                                    "Symbolic links are never followed. Exit code 0: all uploaded; 1: some "
                                    "failed or in doubt (run again); 2: some entries were not sent (hidden, "
                                    "folder, link, not_a_file).")
    up.add_argument("folder", help="the local folder whose files are uploaded (not those of sub-folders)")
    up.add_argument("--folder-id", required=True, type=int, help="the Mediaflow folder id (may be negative)")
    _connection_options(up)
    up.add_argument("--concurrency", type=int, default=4, help="files in flight at once, 1 to 64 (default 4)")
    up.add_argument("--dry-run", action="store_true", help="show what would be sent; send nothing")
    up.add_argument("--journal", help="journal file (default FOLDER/.mediaflow-upload.sqlite)")
    up.add_argument("--report", help="write one row per file to this CSV file")
    up.add_argument("--no-progress", action="store_true", help="no progress bar")
    up.set_defaults(func=_cmd_upload)


def _connect(args: argparse.Namespace) -> Any:
    return _service.connect_cli(SERVICE, args)


def _cmd_latest(args: argparse.Namespace) -> int:
    with _connect(args) as mf:
        df = mf.latest(type=args.type, limit=args.limit)
    if args.out:
        df.to_csv(args.out, index=False)
    shown = [c for c in ("id", "name", "type", "extension", "filesize", "uploaded", "uploaded_by") if c in df.columns]
    if len(df):
        print(df[shown].head(40).to_string(index=False))
    print(f"Mediaflow: {len(df)} file{'s' if len(df) != 1 else ''}" + (f" written to {args.out}" if args.out else ""))
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    with _connect(args) as mf:
        df = mf.search(args.text, type=args.type, folder_id=args.folder_id, limit=args.limit)
    if args.out:
        df.to_csv(args.out, index=False)
    shown = [c for c in ("id", "name", "type", "extension", "filesize", "uploaded") if c in df.columns]
    if len(df):
        print(df[shown].head(40).to_string(index=False))
    found = f"{len(df)} file{'s' if len(df) != 1 else ''}"
    print(f"Mediaflow: {found} found" + (f", written to {args.out}" if args.out else ""))
    return 0


def _cmd_upload(args: argparse.Namespace) -> int:
    from .uploads import exit_code

    with _connect(args) as mf:
        result = mf.upload_folder(args.folder, args.folder_id, concurrency=args.concurrency, dry_run=args.dry_run,
                                  journal=args.journal, progress=not args.no_progress)
    if args.report:
        result.to_csv(args.report, index=False)
    problems = result[~result["outcome"].isin(["uploaded", "already_uploaded", "would_upload"])]
    if len(problems):
        print(problems[["file", "outcome", "http_status", "message"]].head(40).to_string(index=False))
    print(result.summary)
    return exit_code(result)
