"""``toolkit boknett pull --state FILE [--after DATE] [--download DIR] [--report FILE]``.

The incremental pull of Boknett's object report from the command line: the cursor is read from ``--state``
(created on the first run, which needs ``--after``) and saved back only when every page arrived. With
``--download DIR`` the objects' files are downloaded (resumable: a re-run fetches nothing already there);
``--report FILE`` writes one CSV row per object (with the download's outcome when ``--download`` is given).

The password is read from ``TOOLKIT_BOKNETT_PASSWORD`` (environment, ``.env``, keyring) or asked for with a
hidden prompt — never taken from the command line, where every process on the machine could see it. The
user name comes from ``--username`` or ``TOOLKIT_BOKNETT_USERNAME``; ``--environment sandbox`` uses a running
``toolkit sandbox``.

Exit codes: :data:`PULL_EXIT_CODES` (also in ``toolkit boknett pull --help`` and the README).
"""

from __future__ import annotations

import argparse
from typing import Any

from ..core import cli
from ..core.check import add_check_command

__all__ = ["register"]

SERVICE = "boknett"
OK_OUTCOMES = ("downloaded", "already_downloaded", "duplicate")


#: the exit codes of ``toolkit boknett pull`` (with those of every verb: 2 usage, 130 Ctrl-C)
PULL_EXIT_CODES = {0: "done", 1: "some files could not be downloaded (see the report; 410 rows: pull again)",
                   3: "an error stopped the run (the state file is then unchanged)"}


def register(subparsers: Any) -> None:
    """Add ``toolkit boknett …`` to the ``toolkit`` command line."""
    from .client import Client

    bk = subparsers.add_parser("boknett", help="Boknett: pull the report of changed book objects, download files")
    sub = bk.add_subparsers(dest="boknett_command", required=True, metavar="VERB")
    add_check_command(sub, SERVICE)  # toolkit boknett check: the live contract check
    pull = cli.add_verb(
        sub, "pull", help="what changed since the last pull (cursor kept in --state)",
        description="Pull Boknett's object report from the cursor saved in --state (the first run needs --after) "
                    "and save the new cursor once every page arrived. The password comes from "
                    "TOOLKIT_BOKNETT_PASSWORD or a hidden prompt.",
        codes=PULL_EXIT_CODES, func=_cmd_pull)
    pull.add_argument("--state", required=True, help="file holding the cursor (created on the first pull)")
    pull.add_argument("--after", help="first pull only: changes after this date (YYYY-MM-DD or yyyyMMddHHmmss, "
                                      "UTC, within 180 days)")
    pull.add_argument("--download", metavar="DIR", help="download the objects' files into this folder")
    pull.add_argument("--report", metavar="FILE", help="write one row per object to this CSV file")
    cli.add_connection(pull, SERVICE)
    pull.add_argument("--pagesize", type=int, default=5000, help="objects per page, 1-5000 (default 5000)")
    cli.add_concurrency(pull, "downloads", Client.download)
    pull.add_argument("--overwrite", action="store_true", help="download every file again")
    cli.add_no_progress(pull)


def _cmd_pull(args: argparse.Namespace) -> int:
    import pandas as pd

    with cli.connect(SERVICE, args) as bk:
        objs = bk.changes(state=args.state, after=args.after, pagesize=args.pagesize)
        counts = objs["type"].value_counts().to_dict() if len(objs) else {}
        per_type = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        print(f"Boknett: {len(objs)} changed object{'s' if len(objs) != 1 else ''}"
              f"{' (' + per_type + ')' if per_type else ''}; cursor saved in {args.state}")
        code = 0
        report = objs
        if args.download:
            res = bk.download(objs, args.download, overwrite=args.overwrite, **cli.bulk_options(args))
            problems = res[~res["outcome"].isin(OK_OUTCOMES)]
            if len(problems):
                print(problems[["isbn13", "type", "outcome", "http_status", "message"]].head(40).to_string(index=False))
                if len(problems) > 40:
                    print(f"… {len(problems) - 40} more (use --report for all)")
                code = 1
            print(res.attrs.get("summary", ""))
            report = pd.concat([objs.reset_index(drop=True),
                                res[["file", "bytes", "http_status", "outcome", "message"]].reset_index(drop=True)],
                               axis=1)
        if args.report:
            report.to_csv(args.report, index=False)
    return code
