"""The command line's shared pieces, so every verb of every service reads the same way.

* :func:`add_verb` — a verb's parser with its **exit codes** declared once (a table: code → meaning); the
  ``--help`` epilog is made from that table, ``toolkit.cli.main()`` returns only its codes, and the README's
  table of verbs is compared with it by a test (tests/test_cli.py). Every table holds the codes that
  ``main()`` itself gives: 2 a wrong command line (argparse), 3 an error stopped the run, 130 Ctrl-C.
* :func:`add_connection` / :func:`connect` — the connection flags of a service (one per non-secret
  field, from :func:`toolkit.core.service.add_connection_options`) and ``--environment``, also for the
  services without environment names (Livingdocs, Dokus): ``--environment sandbox`` finds the sandbox
  that ``toolkit sandbox`` / ``./run sandbox`` / ``./run lab`` started in another process
  (:mod:`toolkit.core.discovery`) and takes its fake demo credentials.
* :func:`add_concurrency` / :func:`add_no_progress` / :func:`bulk_options` — ``--concurrency N|auto`` and
  ``--no-progress`` of the bulk verbs. ``--concurrency`` is passed to the call only when given, so the
  call's own default applies otherwise; ``auto`` is passed through as the text ``"auto"``.
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
import sys
import textwrap
from typing import Any, Callable, Mapping

__all__ = ["USAGE", "ERROR", "INTERRUPTED", "exit_codes", "codes_text", "add_verb", "add_connection", "connect",
           "add_concurrency", "add_no_progress", "bulk_options", "HelpFormatter"]

USAGE, ERROR, INTERRUPTED = 2, 3, 130
#: the codes ``toolkit.cli.main()`` gives whatever the verb (argparse's usage error, an error, Ctrl-C)
COMMON = {USAGE: "the command line was wrong (the usage is printed)", ERROR: "an error stopped the run",
          INTERRUPTED: "interrupted (Ctrl-C)"}


def exit_codes(own: Mapping[int, str]) -> dict[int, str]:
    """A verb's table of exit codes: its own codes and :data:`COMMON` (a verb whose own 2 means something
    else says both; a verb may word 3 its own way)."""
    table = dict(own)
    for code, meaning in COMMON.items():
        if code == USAGE and USAGE in table and COMMON[USAGE] not in table[USAGE]:
            table[USAGE] = f"{table[USAGE]}, or {COMMON[USAGE]}"
        table.setdefault(code, meaning)
    return dict(sorted(table.items()))


def codes_text(table: Mapping[int, str], *, common: bool = True) -> str:
    """The table on one line: ``0 done · 1 … · 130 …``. ``common=False`` leaves out the codes worded as
    :data:`COMMON` says them (the README's table of verbs says those once, above the table)."""
    if common:
        return " · ".join(f"{code} {meaning}" for code, meaning in table.items())
    also = f", or {COMMON[USAGE]}"
    return " · ".join(f"{code} {meaning.removesuffix(also)}" for code, meaning in table.items()
                      if COMMON.get(code) != meaning)


def _epilog(table: Mapping[int, str]) -> str:
    return "exit codes:\n" + "\n".join(f"  {code:>3}  {meaning}" for code, meaning in table.items())


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, keeping the line breaks of descriptions and epilogs (each line wrapped alone)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        lines = []
        for line in text.splitlines():
            hang = re.match(r"\s*\d+\s+", line)  # an exit code's line: wrapped under its meaning
            more = indent + " " * (hang.end() if hang else 0)
            lines.append(textwrap.fill(line, width, initial_indent=indent, subsequent_indent=more) or "")
        return "\n".join(lines)


def add_verb(sub: Any, name: str, *, help: str, description: str, codes: Mapping[int, str],
             func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    """One verb (``toolkit <service> <name>``): its one-line ``help``, its ``description``, its exit codes
    (:func:`exit_codes`) as the epilog of ``--help``; ``func(args)`` returns one of those codes."""
    table = exit_codes(codes)
    p = sub.add_parser(name, help=help, description=description, epilog=_epilog(table),
                       formatter_class=HelpFormatter)
    p.set_defaults(func=func, exit_codes=table)
    return p


# -- connection -----------------------------------------------------------------------------------------
def add_connection(parser: argparse.ArgumentParser, service: str) -> None:
    """The connection flags of ``service``: one per non-secret connection field (a secret never gets a flag)
    and ``--environment`` — for every service, so ``--environment sandbox`` works the same everywhere."""
    from .credentials import env_name
    from .registry import spec
    from .service import add_connection_options

    add_connection_options(parser, service)
    if spec(service).environment_field is None:
        production = "production (the default address), " if _has_default_address(service) else ""
        parser.add_argument("--environment", default=None, metavar="NAME",
                            help="sandbox (the sandbox started by ./run sandbox or ./run lab, with its demo "
                                 f"credentials), {production}a URL, or a name of "
                                 f"{env_name(service, 'environments')}; or {env_name(service, 'environment')}")
        # the flag of earlier versions: still read, with a note
        parser.add_argument("--sandbox", action="store_true", help=argparse.SUPPRESS)


def connect(service: str, args: argparse.Namespace, **values: Any) -> Any:
    """Connect from the flags of :func:`add_connection` (core's one connect path; a missing secret is asked
    for with a hidden prompt on a terminal)."""
    from .credentials import env_name
    from .registry import spec
    from .service import connect_cli

    if spec(service).environment_field is None:
        if getattr(args, "sandbox", False):
            print("note: --sandbox is now --environment sandbox (the same flag for every service)", file=sys.stderr)
            args.environment = "sandbox"
        name = getattr(args, "environment", None) or os.environ.get(env_name(service, "environment"))
        url_given = any(getattr(args, f, None) for f in spec(service).url_fields)
        if name and not url_given:  # as for every service: a URL given wins over the environment's
            named = _named_environment(service, str(name).strip())
            values = {**{k: v for k, v in named.items() if getattr(args, k, None) in (None, "")}, **values}
    return connect_cli(service, args, **values)


def _has_default_address(service: str) -> bool:
    from .registry import spec

    svc = spec(service)
    return all(f.default for f in svc.fields if f.name in svc.url_fields)


def _named_environment(service: str, name: str) -> dict[str, Any]:
    """The fields an ``--environment`` gives a service without environment names: the sandbox's demo
    credentials, a URL, or a URL named in ``TOOLKIT_<SERVICE>_ENVIRONMENTS``."""
    from . import discovery
    from .credentials import env_name
    from .errors import ValidationError
    from .registry import spec
    from .service import _environments, no_sandbox_error

    if name == "sandbox":
        sandbox = discovery.discover(service)
        if sandbox is None:
            raise no_sandbox_error(service, via="cli")
        return dict(sandbox.credentials(service))
    if name.startswith(("http://", "https://")):
        return {"base_url": name.rstrip("/")}
    svc = spec(service)
    if name == "production" and _has_default_address(service):
        return {}  # the service's own address is the fields' default (Livingdocs' server.livingdocs.io)
    named = _environments(svc, None)
    if name not in named:
        known = [*named, "sandbox"] + (["production"] if _has_default_address(service) else [])
        raise ValidationError(f"unknown environment {name!r}", service=service,
                              hint=f"Use one of {', '.join(sorted(known))}, a URL, set "
                                   f"{env_name(service, 'environments')} (a JSON object of name → URL), or give "
                                   "--base-url.")
    target = named[name]
    return dict(target) if isinstance(target, Mapping) else {"base_url": str(target).rstrip("/")}


# -- bulk options ---------------------------------------------------------------------------------------
def _concurrency(text: str) -> int | str:
    if text.strip().lower() == "auto":
        return "auto"
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"give a whole number of at least 1 or auto, not {text!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"give a whole number of at least 1 or auto, not {text!r}")
    return number


def add_concurrency(parser: argparse.ArgumentParser, what: str, call: Callable[..., Any]) -> None:
    """``--concurrency N|auto``: ``what`` at once (e.g. "photos sent"); the default said in the help is the
    ``concurrency`` default of ``call`` (the library call the verb makes), which applies when not given."""
    default = inspect.signature(call).parameters["concurrency"].default
    parser.add_argument("--concurrency", type=_concurrency, default=None, metavar="N|auto",
                        help=f"{what} at once: a whole number, or auto (the toolkit adapts it to the service's "
                             f"answers); default {default}")


def add_no_progress(parser: argparse.ArgumentParser) -> None:
    """``--no-progress``: no progress bar; the summary line is printed at the end instead."""
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar; print the summary line at the end instead")


def bulk_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of a bulk call from :func:`add_concurrency` / :func:`add_no_progress`:
    ``concurrency`` only when given, ``progress``."""
    options: dict[str, Any] = {}
    if getattr(args, "concurrency", None) is not None:
        options["concurrency"] = args.concurrency
    if hasattr(args, "no_progress"):
        options["progress"] = not args.no_progress
    return options
