"""The registry of services: each service package registers itself here when it is imported.

Core keeps no table of service names: a service is a package ``toolkit/<name>/`` with a ``client.py``
whose ``__init__`` calls :func:`register` with a :class:`ServiceSpec` (its display name, its connection
fields, its environments, its async and sync client classes). :func:`names` finds the packages on disk,
so ``toolkit.<name>``, the credentials form, the CLI and ``from toolkit import *`` pick a new service up
without any other file changing.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from . import errors

__all__ = ["Field", "ServiceSpec", "register", "spec", "names", "registered"]


@dataclass(frozen=True)
class Field:
    """One connection field of a service (a ``connect()`` argument, ``TOOLKIT_<SERVICE>_<NAME>``, a
    ``--name`` CLI flag and a row of the credentials form)."""

    name: str
    label: str
    secret: bool = False
    required: bool = True
    default: str | None = None
    help: str = ""

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


@dataclass
class ServiceSpec:
    name: str                                   #: package name, e.g. "uddata"
    title: str                                  #: display name, e.g. "Uddata+"
    fields: list[Field]                         #: connection fields, in form order
    client: Any = None                          #: the async client class
    sync: Any = None                            #: the sync client class (generated from ``client``)
    #: environment name → base URL, or → a mapping of URL fields (e.g. {"base_url": …, "login_url": …})
    environments: Mapping[str, Any] = field(default_factory=dict)
    #: the field that names the environment (None: the service has no environment names)
    environment_field: str | None = None
    #: the URL fields an environment (and the sandbox) sets
    url_fields: tuple[str, ...] = ("base_url",)
    secret_hint: str = ""


_REGISTRY: dict[str, ServiceSpec] = {}
_NOT_SERVICES = frozenset({"core", "widgets", "sandbox"})


def register(service: ServiceSpec) -> ServiceSpec:
    """Register (or replace) a service; its display name is used in every message from then on."""
    _REGISTRY[service.name] = service
    errors.SERVICE_NAMES[service.name] = service.title
    return service


def names() -> list[str]:
    """The service packages of this installation (found on disk, not imported)."""
    found = []
    for folder in (str(Path(__file__).resolve().parents[1]),):  # the toolkit package: look at files, import none
        for info in pkgutil.iter_modules([folder]):
            if info.ispkg and info.name not in _NOT_SERVICES and (Path(folder) / info.name / "client.py").is_file():
                found.append(info.name)
    return sorted(set(found))


def registered() -> dict[str, ServiceSpec]:
    """Every service, imported and registered."""
    for name in names():
        spec(name)
    return dict(_REGISTRY)


def spec(name: str) -> ServiceSpec:
    """The spec of one service (its package is imported on first use)."""
    if name not in _REGISTRY and name in names():
        importlib.import_module(f"toolkit.{name}")
        if name not in _REGISTRY:  # a package whose __init__ does not import its client (yet)
            importlib.import_module(f"toolkit.{name}.client")
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(names()) or "none"
        raise errors.ValidationError(f"unknown service {name!r}; this toolkit has {known}") from None
