"""``toolkit uddata upload FOLDER``, ``toolkit uddata prepare FOLDER`` and ``toolkit uddata audit CPRS.csv``
(the jar's replacement).

Connecting goes through core's one path, ``toolkit.core.service.connect("uddata", via="cli", …)``: the
options, then ``TOOLKIT_UDDATA_<FIELD>`` (environment, ``.env``, keyring), then the environment name.
``--environment sandbox`` finds a sandbox running in another process (``toolkit sandbox`` / ``./run lab``
write a discovery file, ``TOOLKIT_SANDBOX_FILE``) and takes its fake demo credentials for every field not
given. A missing field is named by its command-line flag and environment variable.

The client secret is read from ``TOOLKIT_UDDATA_CLIENT_SECRET`` (environment or ``.env``), the keyring,
the sandbox, or asked for with a hidden prompt — never taken from the command line, where every process
on the machine could see it.

Exit codes: :data:`UPLOAD_EXIT_CODES`, :data:`PREPARE_EXIT_CODES` (local: nothing is sent, no connection) and
:data:`AUDIT_EXIT_CODES` (numbers not on the roster, ``unknown_cpr``, are a result: listed in ``--out``, counted
in the summary), the same in each verb's ``--help`` and the README.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..core import cli
from ..core.check import add_check_command

__all__ = ["register"]


#: the exit codes of each verb (with those of every verb: 2 usage, 130 Ctrl-C)
UPLOAD_EXIT_CODES = {0: "all uploaded (or already uploaded)", 1: "some failed",
                     2: "some files skipped as invalid (bad name, not a JPEG, duplicate CPR; with --prepare also a "
                        "photo a check refused)", 3: "an error stopped the run"}
PREPARE_EXIT_CODES = {0: "all prepared (or prepared before)", 1: "some copies could not be written",
                      2: "some entries not prepared (a check refused them)", 3: "an error stopped the run"}
AUDIT_EXIT_CODES = {0: "done (numbers not on the roster are a result: unknown_cpr)",
                    1: "some CPR numbers could not be checked (error or deferred)",
                    2: "some inputs are not CPR numbers", 3: "an error stopped the run"}


def _size(text: str) -> tuple[int, int]:
    """``200x250`` → (200, 250) for ``--min-size``."""
    try:
        width, height = (int(v) for v in text.lower().replace("×", "x").split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"give WIDTHxHEIGHT in pixels, e.g. 200x250, not {text!r}") from None
    return width, height


def _megabytes(text: str) -> int:
    """``--max-mb 9.5`` → bytes."""
    try:
        return int(float(text) * 1024 * 1024)
    except ValueError:
        raise argparse.ArgumentTypeError(f"give megabytes as a number, e.g. 10, not {text!r}") from None


def _prepare_options(p: argparse.ArgumentParser) -> None:
    """The settings of preparing photos (``prepare`` and ``upload --prepare``)."""
    p.add_argument("--max-side", type=int, default=2000, metavar="PIXELS",
                   help="the longest side of a prepared photo; larger photos are scaled down (default 2000)")
    p.add_argument("--max-mb", type=_megabytes, default=None, metavar="MB", dest="max_bytes",
                   help="the largest prepared file in MB (default 10, what Uddata+ accepts)")
    p.add_argument("--min-size", type=_size, default=(200, 250), metavar="WxH",
                   help="smaller upright photos are refused as too_small (default 200x250)")
    p.add_argument("--quality", type=int, default=90, help="the JPEG quality of prepared photos (default 90)")
    p.add_argument("--distinct", action="append", default=[], metavar="CPR",
                   help="a CPR number whose photo you checked against a look-alike: two numbers both given are "
                        "not flagged as the same photo (repeat the option for each number)")


def _upload_parser(sub: Any) -> None:
    from .client import Client

    up = cli.add_verb(sub, "upload", help="upload every <cpr>.jpg of a folder (resumable)",
                      description="Upload every <cpr>.jpg / <cpr>.jpeg of FOLDER to Uddata+ (with --prepare also "
                                  "<cpr>.heic/.png/.webp/.tif, each prepared on its way). The client secret comes "
                                  "from TOOLKIT_UDDATA_CLIENT_SECRET or a hidden prompt.",
                      codes=UPLOAD_EXIT_CODES, func=_cmd_upload)
    up.add_argument("folder", help="the folder of photos named by CPR number (only this folder, not sub-folders)")
    cli.add_connection(up, "uddata")
    cli.add_concurrency(up, "photos sent", Client.upload_folder)
    up.add_argument("--dry-run", action="store_true", help="check the files and show what would be sent")
    up.add_argument("--journal", help="journal file (default FOLDER/.uddata-upload.sqlite)")
    up.add_argument("--report", help="write one row per file to this CSV file")
    cli.add_no_progress(up)
    up.add_argument("--prepare", action="store_true",
                    help="prepare each photo in memory before it is sent: upright, an sRGB JPEG within --max-side "
                         "and --max-mb, no metadata; the same photo under two CPR numbers is not sent")
    _prepare_options(up)


def _prepare_parser(sub: Any) -> None:
    pr = cli.add_verb(sub, "prepare", help="make the photos of a folder ready to send (nothing is sent)",
                      codes=PREPARE_EXIT_CODES, func=_cmd_prepare, description="Prepare every <cpr>.jpg/.jpeg/.heic/.heif/.png/.webp/.tif/.tiff of FOLDER: "
                                    "upright, an sRGB JPEG within --max-side and --max-mb, without metadata (EXIF, "
                                    "GPS, XMP, IPTC, thumbnails), written as <cpr>.jpg to --out. The originals are "
                                    "never changed; a re-run prepares nothing twice; the same photo under two CPR "
                                    "numbers is flagged and not prepared. No connection is made.")
    pr.add_argument("folder", help="the folder of photos named by CPR number (only read, never changed)")
    pr.add_argument("--out", help="the folder for the prepared copies (created; default FOLDER/prepared)")
    _prepare_options(pr)
    pr.add_argument("--dry-run", action="store_true", help="check the photos and show what would be done; "
                                                           "nothing is written")
    pr.add_argument("--workers", type=int, default=None,
                    help="photos prepared at once (default: the processor's cores, at most 4)")
    pr.add_argument("--report", help="write one row per folder entry to this CSV file")
    cli.add_no_progress(pr)


def register(subparsers: Any) -> None:
    """Add ``toolkit uddata …`` to the ``toolkit`` command line."""
    from .client import Client

    uddata = subparsers.add_parser("uddata", help="Uddata+: upload a folder of photos, audit missing photos")
    sub = uddata.add_subparsers(dest="uddata_command", required=True, metavar="VERB")
    add_check_command(sub, "uddata")  # toolkit uddata check: the live contract check

    _upload_parser(sub)
    _prepare_parser(sub)

    au = cli.add_verb(sub, "audit", help="which CPR numbers lack a photo",
                      description="Check, for every CPR number of a CSV/Excel file, whether Uddata+ holds a photo.",
                      codes=AUDIT_EXIT_CODES, func=_cmd_audit)
    au.add_argument("cprs", help="CSV/Excel/text file with CPR numbers (a 'cpr' column, or the first column)")
    cli.add_connection(au, "uddata")
    cli.add_concurrency(au, "CPR numbers checked", Client.audit)
    au.add_argument("--out", help="write the audit rows to this CSV file")
    au.add_argument("--missing", help="write only the CPR numbers without a photo to this CSV file")
    cli.add_no_progress(au)


def _print_table(df: Any, columns: list[str], limit: int = 40) -> None:
    if len(df):
        shown = df[columns].head(limit)
        print(shown.to_string(index=False))  # masked view: no raw CPR on the terminal
        if len(df) > limit:
            print(f"… {len(df) - limit} more rows (use --report/--out for all)")


def _cmd_upload(args: argparse.Namespace) -> int:
    from .upload import exit_code

    with cli.connect("uddata", args) as ud:
        result = ud.upload_folder(args.folder, dry_run=args.dry_run, journal=args.journal,
                                  **cli.bulk_options(args), prepare=args.prepare,
                                  max_side=args.max_side, max_bytes=args.max_bytes, min_size=args.min_size,
                                  quality=args.quality, distinct=args.distinct)
    if args.report:
        result.to_csv(args.report, index=False)
    problems = result[~result["outcome"].isin(["uploaded", "already_uploaded", "would_upload"])]
    _print_table(problems, ["file", "outcome", "http_status", "message"])
    if args.no_progress:  # with progress on, the run printed its one summary line already
        print(result.summary)
    return exit_code(result)


def _cmd_prepare(args: argparse.Namespace) -> int:
    from .prepare import prepare_photos

    result = prepare_photos(args.folder, args.out, max_side=args.max_side, max_bytes=args.max_bytes,
                            min_size=args.min_size, quality=args.quality, distinct=args.distinct,
                            dry_run=args.dry_run, workers=args.workers, progress=not args.no_progress)
    if args.report:
        result.to_csv(args.report, index=False)
    done = result["outcome"].isin(["prepared", "already_prepared", "would_prepare"])
    _print_table(result[done], ["file", "outcome", "actions"])
    _print_table(result[~done], ["file", "outcome", "message"])
    if args.no_progress:  # with progress on, the run printed its one summary line already
        print(result.summary)
    outcomes = set(result["outcome"].dropna())
    if "failed" in outcomes:
        return 1
    return 2 if outcomes - {"prepared", "already_prepared", "would_prepare"} else 0


def _cmd_audit(args: argparse.Namespace) -> int:
    from .audit import missing, read_cprs

    cprs = read_cprs(args.cprs)  # a file that cannot be read is said before anything else
    with cli.connect("uddata", args) as ud:
        result = ud.audit(cprs, **cli.bulk_options(args))
    if args.out:
        result.to_csv(args.out, index=False)
    if args.missing:
        missing(result)[["cpr"]].to_csv(args.missing, index=False)
    if args.no_progress:  # with progress on, the run printed its one summary line already
        print(result.summary)
    if result["outcome"].isin(["error", "deferred"]).fillna(False).any():
        return 1
    if (~result["valid"].fillna(False)).any():
        return 2
    return 0
