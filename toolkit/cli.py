"""``toolkit`` command line (``./run toolkit …`` from the repository folder, or ``toolkit`` in .venv).

    toolkit sandbox [--seed N] [--latency-ms MS] [--json]     serve the emulators in the foreground
    toolkit uddata upload FOLDER --environment sandbox …      (``toolkit <service> -h`` lists its verbs)

Service modules add their own verbs through a ``cli.register(subparsers)`` function, on the shared pieces
of :mod:`toolkit.core.cli` (connection flags with ``--environment sandbox`` for every service,
``--concurrency``, ``--no-progress``, a table of exit codes per verb shown in its ``--help``).
:func:`main` returns only the codes of the verb's table: 2 for a wrong command line (argparse), 3 when an
error stopped the run, 130 on Ctrl-C.
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


SANDBOX_EXIT_CODES = {0: "stopped (Ctrl-C or a stop signal)", 3: "the sandbox could not start",
                      130: "interrupted while starting"}


def build_parser() -> argparse.ArgumentParser:
    """The whole ``toolkit`` command line: ``sandbox`` and each service's verbs."""
    from .core.cli import HelpFormatter, add_verb

    parser = argparse.ArgumentParser(prog="toolkit", description="Nordic services toolkit: the five services' "
                                     "verbs and their sandbox (`toolkit <service> -h` lists a service's verbs).",
                                     formatter_class=HelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = add_verb(sub, "sandbox", help="serve the service emulators on 127.0.0.1 in the foreground",
                 description="Serve the emulators of the services on 127.0.0.1 with synthetic data, print their "
                             "URLs and fake demo credentials, and write the discovery file (TOOLKIT_SANDBOX_FILE) "
                             "through which `--environment sandbox` in other terminals finds them. Ctrl-C stops it.",
                 codes=SANDBOX_EXIT_CODES, func=_cmd_sandbox)
    p.add_argument("--seed", type=int, default=0,
                   help="the seed of the synthetic data: the same seed gives the same data (default 0)")
    p.add_argument("--latency-ms", type=float, default=0, metavar="MS",
                   help="milliseconds each emulator waits before answering, as a distant service would (default 0)")
    p.add_argument("--faults", help="faults and limits as JSON, for every service or per service, e.g. "
                                    "'{\"503\": 0.1, \"429\": 0.05, \"drop\": 0.02}', '{\"capacity\": 4}' (at most 4 "
                                    "requests served at once) or '{\"uddata\": {\"rate\": 5, \"burst\": 10}}' (429 "
                                    "beyond 5 requests a second)")
    p.add_argument("--services", help="comma-separated subset, e.g. uddata,dokus (default: every service)")
    p.add_argument("--json", action="store_true", help="print URLs and demo credentials as one JSON line")
    from .core.registry import names

    for service in names():  # each service package with a cli.py plugs in its verbs
        if importlib.util.find_spec(f"toolkit.{service}.cli") is None:
            continue
        importlib.import_module(f"toolkit.{service}.cli").register(sub)
    return parser


def _for_terminal(exc: ToolkitError) -> ToolkitError:
    """An error in a terminal's words: a stopped sandbox is started again with ./run sandbox, not in a
    notebook (the HTTP layer words its hint for notebooks)."""
    from .core.errors import TransportError

    url = exc.url or ""
    if isinstance(exc, TransportError) and exc.reason == "ConnectError" and \
            url.startswith(("http://127.0.0.1", "http://localhost", "https://127.0.0.1", "https://localhost")):
        exc.hint = ("Nothing answers at this local address: if it is the toolkit's sandbox, it was stopped — start "
                    "it again with `./run sandbox` in another terminal (or `./run lab`), then run this again.")
        exc.args = (exc._compose(),)
    return exc


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command line; returns its exit code (one of the verb's table, see the module docstring)."""
    parser = build_parser()
    args = parser.parse_args(argv)  # a wrong command line: argparse prints the usage and exits 2
    try:
        code = int(args.func(args) or 0)
    except ToolkitError as exc:
        print(f"error: {_for_terminal(exc)}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - never a raw traceback with secrets on the terminal
        print(f"error: {type(exc).__name__}: {redact(exc)}", file=sys.stderr)
        return 3
    table = getattr(args, "exit_codes", None)
    if table is not None and code not in table:  # a verb returning a code its --help does not list: a bug
        print(f"error: internal: exit code {code} is not one of this command's ({', '.join(map(str, table))})",
              file=sys.stderr)
        return 3
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
