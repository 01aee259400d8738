"""``toolkit`` command line.

    toolkit sandbox [--seed N] [--latency-ms MS] [--json]     serve the emulators in the foreground
    toolkit uddata upload FOLDER …  /  toolkit uddata audit CPRS.csv …   (see ``toolkit uddata -h``)

Service modules add their own subcommands through a ``cli.register(subparsers)`` function.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import signal
import sys
import threading
from typing import Sequence

from .core.errors import ToolkitError
from .core.redact import redact



def _cmd_sandbox(args: argparse.Namespace) -> int:
    import os

    from .core.credentials import Secret
    from .core.discovery import publish, sandbox_file
    from .sandbox import start

    faults = json.loads(args.faults) if args.faults else None
    # the handlers come first: a signal that arrives right after the URLs were printed must stop the
    # sandbox cleanly (exit 0), not kill the process half-way
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    sb = start(latency_ms=args.latency_ms, faults=faults, seed=args.seed,
               services=args.services.split(",") if args.services else None)
    path = sandbox_file()
    try:
        # demo credentials of the sandbox are fake and printed on purpose, so the CLI and other
        # processes can connect; they are never those of a real service
        creds = {name: {k: (v.reveal() if isinstance(v, Secret) else v) for k, v in sb.credentials(name).items()}
                 for name in sb.emulators}
        line = json.dumps({"urls": sb.urls, "credentials": creds, "pid": os.getpid()})
        try:  # the discovery file: `toolkit … --environment sandbox` and toolkit.sandbox.discover() read it
            publish(line, path)
        except OSError as exc:
            print(f"warning: could not write the sandbox file {path}: {exc}", file=sys.stderr)
        if args.json:
            print(line, flush=True)
        else:
            print("Sandbox running (Ctrl-C stops it):")
            for name, url in sb.urls.items():
                print(f"  {name:<11} {url}")
                for key, value in creds[name].items():
                    if key != "base_url":
                        print(f"      {key} = {value}")
            print(f"Other processes find it through {path} (TOOLKIT_SANDBOX_FILE).")
            sys.stdout.flush()
        while not stop.wait(0.2):
            pass
    finally:
        # the discovery file goes first: once stopping, nobody should find this sandbox any more
        try:
            if json.loads(path.read_text(encoding="utf-8").splitlines()[0]).get("pid") == os.getpid():
                path.unlink()
        except (OSError, ValueError, IndexError):
            pass
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
    from .core.registry import names

    for service in names():  # each service package with a cli.py plugs in its verbs
        if importlib.util.find_spec(f"toolkit.{service}.cli") is None:
            continue
        importlib.import_module(f"toolkit.{service}.cli").register(sub)
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
