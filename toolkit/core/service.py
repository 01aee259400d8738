"""The service template: one connect path for every service, and environments.

``connect(service, **arguments)`` is what every ``toolkit.<service>.connect()`` calls:

1. **explicit arguments** win; each missing field is read from the environment
   (``TOOLKIT_<SERVICE>_<FIELD>``), a ``.env`` file, or the keyring (:func:`load_credentials`);
2. the **environment name** (``production``, ``test`` … and ``sandbox``) maps to the service's URL fields
   through the service's table, ``TOOLKIT_<SERVICE>_ENVIRONMENTS`` (a JSON object) or
   ``environments={name: url}``; ``sandbox`` means a running sandbox found by
   :func:`toolkit.core.discovery.discover`, whose demo credentials fill the fields still missing;
3. a **check of what is missing** whose message names, for each field, the argument, the environment
   variable and the command-line flag;
4. the async client is built and wrapped in the service's **sync client**.

How a sandbox is found (this process, or the sandbox file of another one) is :mod:`toolkit.core.discovery`.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from typing import Any, Mapping

from . import discovery as _discovery
from .credentials import Secret, env_name, load_credentials
from .errors import ValidationError, service_name
from .registry import ServiceSpec, spec


__all__ = ["connect", "connect_cli", "add_connection_options", "resolve_urls", "missing_fields_error",
           "no_sandbox_error"]


# -- environments ---------------------------------------------------------------------------------------
def _environments(svc: ServiceSpec, extra: Mapping[str, Any] | None) -> dict[str, Any]:
    mapping: dict[str, Any] = dict(svc.environments)
    var = env_name(svc.name, "environments")
    text = os.environ.get(var)
    if text:
        try:
            loaded = json.loads(text)
        except ValueError:
            loaded = None
        if not isinstance(loaded, Mapping):
            raise ValidationError(f"{var} is not a JSON object", service=svc.name,
                                  hint=f'Write it as {var}=\'{{"test": "https://…"}}\'.')
        mapping.update(loaded)
    mapping.update(extra or {})
    return mapping


def resolve_urls(svc: ServiceSpec, values: dict[str, Any], environments: Mapping[str, Any] | None = None,
                 via: str = "python") -> dict[str, Any]:
    """Fill the service's URL fields from the environment name (see the module docstring)."""
    out = dict(values)
    if any(out.get(f) for f in svc.url_fields if f == "base_url"):
        return out
    if svc.environment_field is None:
        return out
    name = str(out.get(svc.environment_field) or _default(svc, svc.environment_field) or "").strip()
    if not name:
        return out
    if name.startswith(("http://", "https://")):
        out["base_url"] = name.rstrip("/")
        return out
    if name == "sandbox" and "sandbox" not in svc.environments:
        sb = _discovery.discover(svc.name)
        if sb is None:
            raise no_sandbox_error(svc.name, via)
        demo = sb.credentials(svc.name)
        for key, value in demo.items():
            if out.get(key) in (None, "") or key in svc.url_fields:
                out[key] = value
        return out
    mapping = _environments(svc, environments)
    if name not in mapping:
        flag = "--base-url" if via == "cli" else "base_url=…"
        raise ValidationError(f"unknown environment {name!r}", service=svc.name,
                              hint=f"Use one of {', '.join(sorted([*mapping, 'sandbox']))}, set "
                                   f"{env_name(svc.name, 'environments')} (a JSON object of name → URL), or give "
                                   f"{flag}.")
    target = mapping[name]
    if isinstance(target, Mapping):
        for key, value in target.items():
            out.setdefault(key, value) if out.get(key) else out.__setitem__(key, value)
    else:
        out["base_url"] = str(target).rstrip("/")
    return out


def no_sandbox_error(service: str, via: str = "python") -> ValidationError:
    """``--environment sandbox`` / ``environment="sandbox"`` without a running sandbox, in the words of where
    it was asked: a terminal (``via="cli"``) or Python (a notebook's kernel, a script)."""
    if via == "cli":
        return ValidationError("no sandbox is running", service=service,
                               hint="Start one with `./run sandbox` (or `toolkit sandbox`) in another terminal — "
                                    "`./run lab` starts one too — or give --base-url.")
    return ValidationError("no sandbox is running", service=service,
                           hint="Start one with toolkit.sandbox.start() in this kernel or `toolkit sandbox` "
                                "(./run sandbox) in a terminal, or give the base URL.")


def _default(svc: ServiceSpec, name: str) -> Any:
    for f in svc.fields:
        if f.name == name:
            return f.default
    return None


def missing_fields_error(svc: ServiceSpec, missing: list[str], via: str = "python") -> ValidationError:
    """One error naming, for each missing field, the argument, the environment variable and the flag."""
    by_name = {f.name: f for f in svc.fields}
    errors = {}
    for name in missing:
        f = by_name[name]
        if via == "cli":  # a secret has no flag (other processes would see it): the variable or the prompt
            how = ([f"the environment variable {env_name(svc.name, name)}", "run in a terminal to be asked for it"]
                   if f.secret else [f"{f.flag} on the command line", f"the environment variable {env_name(svc.name, name)}"])
        else:
            how = [f"{name}=… in connect()", f"the environment variable {env_name(svc.name, name)}"]
        errors[name] = [f"{f.label.lower()} is missing: give " + " or ".join(how)]
    return ValidationError(f"cannot connect: {len(missing)} connection field{'s' if len(missing) != 1 else ''} "
                           "missing", service=svc.name, errors=errors,
                           hint="Values may also come from a .env file, the keyring or the credentials form "
                                f"(toolkit.widgets.credentials_form({svc.name!r})).")


def connect(service: str, /, *, via: str = "python", environments: Mapping[str, Any] | None = None,
            **arguments: Any) -> Any:
    """Connect to ``service`` (see the module docstring); returns the sync client."""
    svc = spec(service)
    field_names = [f.name for f in svc.fields]
    given = {k: v for k, v in arguments.items() if k in field_names and v not in (None, "")}
    options = {k: v for k, v in arguments.items() if k not in field_names}
    found = load_credentials(service, **given)
    values: dict[str, Any] = dict(found.to_kwargs())
    values = resolve_urls(svc, values, environments, via=via)
    for f in svc.fields:
        if values.get(f.name) in (None, "") and f.default is not None:
            values[f.name] = f.default
    missing = [f.name for f in svc.fields if f.required and values.get(f.name) in (None, "")]
    if missing:
        raise missing_fields_error(svc, missing, via)
    values = {k: v for k, v in values.items() if k in field_names}
    if environments is not None:
        options.setdefault("environments", environments)
    _network_options(options)
    client = svc.client(**values, **options)
    return svc.sync(client) if svc.sync is not None else client


def _network_options(options: dict[str, Any]) -> None:
    """``verify=`` / ``ca_bundle=`` given to ``connect()`` become the connection's ``transport=Network(...)``
    (:class:`toolkit.core.tls.Network`): a CA bundle, or checks off, for this one connection."""
    if "verify" not in options and "ca_bundle" not in options:
        return
    from .tls import Network

    verify, ca_bundle = options.pop("verify", True), options.pop("ca_bundle", None)
    if options.get("transport") is not None:
        raise ValidationError("give verify=/ca_bundle= or transport=, not both", hint="Put them in the transport: "
                              "transport=toolkit.Network(verify=..., ca_bundle=...).")
    options["transport"] = Network(verify=verify, ca_bundle=ca_bundle)


def add_connection_options(parser: Any, service: str, *, skip: tuple[str, ...] = ()) -> None:
    """Add one ``--flag`` per non-secret connection field of ``service`` to an argparse parser (a secret
    never gets a flag: every process on the machine could read it; it comes from the environment, a
    ``.env`` file, the keyring or a hidden prompt)."""
    svc = spec(service)
    for f in svc.fields:
        if f.secret or f.name in skip:
            continue
        default = f" (default {f.default})" if f.default else ""
        parser.add_argument(f.flag, dest=f.name, default=None,
                            help=f"{f.label}{': ' + f.help if f.help else ''}{default}; or {env_name(service, f.name)}")


def connect_cli(service: str, /, args: Any = None, *, prompt: Any = None, **values: Any) -> Any:
    """The command line's connect: :func:`connect` with ``via="cli"`` from the flags of
    :func:`add_connection_options` (``args``, an argparse namespace) and ``values``; a secret that is still
    missing is asked for with a hidden prompt when a terminal is attached."""
    svc = spec(service)
    merged = {f.name: getattr(args, f.name, None) for f in svc.fields} if args is not None else {}
    merged.update(values)
    merged = {k: v for k, v in merged.items() if v not in (None, "")}
    try:
        return connect(service, via="cli", **merged)
    except ValidationError as exc:
        secrets = [f for f in svc.fields if f.secret and f.name in exc.errors]
        others = set(exc.errors) - {f.name for f in secrets}
        if not secrets or others or sys.stdin is None or not sys.stdin.isatty():
            raise
        ask = prompt or getpass.getpass
        for f in secrets:
            merged[f.name] = Secret(ask(f"{svc.title} {f.label.lower()} (hidden): "))
        return connect(service, via="cli", **merged)


def display(service: str) -> str:
    return service_name(service)
