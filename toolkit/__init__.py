"""toolkit — work with Uddata+, Livingdocs, Boknett, Mediaflow and Dokus from JupyterLab.

    import toolkit
    sb = toolkit.sandbox.start()
    ud = toolkit.uddata.connect(**sb.credentials("uddata"))

Submodules load on first use (``toolkit.uddata``, ``toolkit.dokus``, ``toolkit.widgets`` …).
"""

from __future__ import annotations

import importlib
from typing import Any

from .core.errors import (APIError, BadRequest, Conflict, Forbidden, Gone, JobFailed, JobTimeout, NotFound,
                          RateLimited, ServerError, ToolkitError, TransportError, Unauthorized, ValidationError)
from .core.credentials import Credentials, Secret, load_credentials
from .core.journal import run_rows, runs
from .core.check import check  # toolkit.check(service, **connect_kwargs): the live contract check
from .core.tls import Network
from ._pandas import with_pandas as _with_pandas

_with_pandas()  # the "cpr"/"redacted" dtypes and the notebook's tables, as soon as pandas is imported

from ._version import __version__  # noqa: E402,F401

_CORE_NAMES = [
    "ToolkitError", "APIError", "BadRequest", "Unauthorized", "Forbidden", "NotFound", "Gone", "Conflict",
    "RateLimited", "ServerError", "TransportError", "JobFailed", "JobTimeout", "ValidationError",
    "Secret", "Credentials", "load_credentials", "contact_sheet", "doctor", "sandbox", "widgets", "testing",
    "runs", "run_rows", "record", "Network", "check",
]
_PACKAGES = {"sandbox", "widgets", "core", "cli", "testing"}


def _services() -> list[str]:
    from .core.registry import names

    return names()


def __getattr__(name: str) -> Any:
    if name in _PACKAGES or (not name.startswith("_") and name in _services()):
        return importlib.import_module(f".{name}", __name__)
    if name == "record":  # loads the HTTP layer (httpx) only when a transcript is asked for
        from .core.record import record

        return record
    if name == "contact_sheet":
        from .widgets.images import contact_sheet

        return contact_sheet
    if name == "doctor":
        from .widgets.doctor import doctor

        return doctor
    raise AttributeError(f"module 'toolkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_CORE_NAMES) | set(_services()))


#: the public names: the core ones and every service package of this installation
__all__ = _CORE_NAMES + _services()
