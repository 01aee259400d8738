"""``toolkit`` command line.

    toolkit sandbox [--seed N] [--latency-ms MS] [--json]     serve the emulators in the foreground
    toolkit uddata upload FOLDER …  /  toolkit uddata audit CPRS.csv …   (see ``toolkit uddata -h``)

Service modules add their own subcommands through a ``cli.register(subparsers)`` function.
"""

from __future__ import annotations

import argparse
import importlib
import json
import signal
import sys
import threading
from typing import Sequence

from .core.errors import ToolkitError
from .core.redact import redact

SERVICE_CLIS = ("uddata", "dokus", "livingdocs", "boknett", "mediaflow")


def _cmd_sandbox(args: argparse.Namespace) -> int:
    from .core.credentials import Secret
    from .sandbox import start

    faults = json.loads(args.faults) if args.faults else None
    sb = start(latency_ms=args.latency_ms, faults=faults, seed=args.seed,
               services=args.services.split(",") if args.services else None)
    # demo credentials of the sandbox are fake and printed on purpose, so the CLI and other
    # processes can connect; they are never those of a real service
    creds = {name: {k: (v.reveal() if isinstance(v, Secret) else v) for k, v in sb.credentials(name).items()}
             for name in sb.emulators}
    if args.json:
        print(json.dumps({"urls": sb.urls, "credentials": creds}), flush=True)
    else:
        print("Sandbox running (Ctrl-C stops it):")
        for name, url in sb.urls.items():
            print(f"  {name:<11} {url}")
            for key, value in creds[name].items():
                if key != "base_url":
                    print(f"      {key} = {value}")
        sys.stdout.flush()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sb.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="toolkit", description="Nordic services toolkit")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("sandbox", help="serve the service emulators on 127.0.0.1 in the foreground")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--latency-ms", type=float, default=0)
    p.add_argument("--faults", help='JSON, e.g. \'{"503": 0.1, "429": 0.05, "drop": 0.02}\'')
    p.add_argument("--services", help="comma-separated subset, default all")
    p.add_argument("--json", action="store_true", help="print URLs and demo credentials as one JSON line")
    p.set_defaults(func=_cmd_sandbox)
    for service in SERVICE_CLIS:
        try:
            module = importlib.import_module(f"toolkit.{service}.cli")
        except ModuleNotFoundError as exc:
            if exc.name in (f"toolkit.{service}.cli", f"toolkit.{service}"):
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ToolkitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - never a raw traceback with secrets on the terminal
        print(f"error: {type(exc).__name__}: {redact(exc)}", file=sys.stderr)
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
