"""Secret-holding objects and where credentials come from.

* :class:`Secret` wraps a secret string: its ``repr``/``str`` is ``***``, the value is registered with the
  redaction function, and code reads it with :meth:`Secret.reveal` right where it is sent.
* :class:`Credentials` holds one service's fields (secret ones as :class:`Secret`) and turns them into the
  keyword arguments of that service's ``connect()``.
* Sources, first found wins per field: explicit arguments, environment variables
  ``TOOLKIT_<SERVICE>_<FIELD>`` (e.g. ``TOOLKIT_UDDATA_CLIENT_SECRET``), a ``.env`` file (read, never
  exported to the process environment), the system keyring (service ``toolkit-<service>``, user = field
  name; only where the ``keyring`` package and a backend exist), or the widget form.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator, Mapping

from . import registry
from .redact import register_secret
from .registry import Field

__all__ = ["Secret", "reveal", "Field", "FIELDS", "Credentials", "env_name", "load_credentials"]


class Secret:
    """A secret value that never shows itself (``repr``, ``str``, f-strings, DataFrames)."""

    __slots__ = ("_value",)

    def __init__(self, value: "str | Secret") -> None:
        raw = value.reveal() if isinstance(value, Secret) else str(value)
        object.__setattr__(self, "_value", raw)
        register_secret(raw)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __len__(self) -> int:
        return len(self._value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return self._value == other._value
        return NotImplemented

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Secret is immutable")

    def __reduce__(self) -> Any:
        raise TypeError("a Secret cannot be pickled (it would be written out in clear)")


def reveal(value: "str | Secret | None") -> str | None:
    """The raw value of a secret given as ``str`` or :class:`Secret` (registering it for redaction)."""
    if value is None:
        return None
    if isinstance(value, Secret):
        return value.reveal()
    register_secret(str(value))
    return str(value)


class _FieldsView(Mapping[str, list[Field]]):
    """``FIELDS[service]``: the connection fields each service registered (see :mod:`toolkit.core.registry`)."""

    def __getitem__(self, service: str) -> list[Field]:
        if service not in registry.names():
            raise KeyError(service)
        return list(registry.spec(service).fields)

    def __iter__(self) -> Iterator[str]:
        return iter(registry.names())

    def __len__(self) -> int:
        return len(registry.names())


#: the fields of each service's ``connect()``, in form order (registered by each service package)
FIELDS: Mapping[str, list[Field]] = _FieldsView()


def env_name(service: str, field: str) -> str:
    return f"TOOLKIT_{service.upper()}_{field.upper()}"


def _fields(service: str) -> list[Field]:
    return list(registry.spec(service).fields)


class Credentials(Mapping[str, Any]):
    """One service's connection fields; secret fields are :class:`Secret`. Behaves as a read-only dict."""

    def __init__(self, service: str, values: Mapping[str, Any] | None = None, source: str = "") -> None:
        self.service = service
        self.source = source
        fields = {f.name: f for f in _fields(service)}
        clean: dict[str, Any] = {}
        for key, value in (values or {}).items():
            if value is None or value == "":
                continue
            spec = fields.get(key)
            clean[key] = Secret(value) if spec is not None and spec.secret else value
        self._values = clean

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def missing(self) -> list[str]:
        return [f.name for f in _fields(self.service)
                if f.required and f.default is None and not self._values.get(f.name)]

    def to_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``toolkit.<service>.connect()`` (secrets stay wrapped)."""
        return dict(self._values)

    def connect(self, **overrides: Any) -> Any:
        """``toolkit.<service>.connect()`` with these fields (and ``overrides``)."""
        import importlib

        module = importlib.import_module(f"toolkit.{self.service}")
        return module.connect(**{**self.to_kwargs(), **overrides})

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"Credentials({self.service!r}, {shown})"


def _read_dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def _keyring_get(service: str, field: str) -> str | None:
    try:
        import keyring  # optional
        from keyring.errors import KeyringError
    except ImportError:
        return None
    try:
        return keyring.get_password(f"toolkit-{service}", field)
    except (KeyringError, RuntimeError, OSError):
        return None


def load_credentials(service: str, *, env: Mapping[str, str] | None = None, dotenv: str | Path | None = ".env",
                     use_keyring: bool = True, **explicit: Any) -> Credentials:
    """Credentials for ``service`` from explicit arguments, the environment, ``.env`` and the keyring."""
    env = os.environ if env is None else env
    dot = _read_dotenv(Path(dotenv)) if dotenv else {}
    values: dict[str, Any] = {}
    sources = set()
    for spec in _fields(service):
        name = env_name(service, spec.name)
        if explicit.get(spec.name) not in (None, ""):
            values[spec.name] = explicit[spec.name]
            sources.add("arguments")
        elif env.get(name):
            values[spec.name] = env[name]
            sources.add("environment")
        elif dot.get(name):
            values[spec.name] = dot[name]
            sources.add(".env")
        elif spec.secret and use_keyring and (found := _keyring_get(service, spec.name)):
            values[spec.name] = found
            sources.add("keyring")
    return Credentials(service, values, source=", ".join(sorted(sources)))
