"""Notebook widgets: thin views over the clients (all logic lives below them).

* ``credentials_form(service)`` — a form for a service's credentials; secrets never stay in widget state
* ``image_grid(images, labels=None)`` — paged Pillow contact sheets in one image widget
* ``contact_sheet(images, labels=None)`` — one contact sheet as a ``PIL.Image.Image``
* ``product_editor(dk.products)`` — edit Dokus products, see the plan, apply on confirm
* ``doctor()`` — versions and health of the notebook environment
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "credentials_form": ".forms",
    "CredentialsForm": ".forms",
    "image_grid": ".images",
    "ImageGrid": ".images",
    "contact_sheet": ".images",
    "contact_sheets": ".images",
    "product_editor": ".product_editor",
    "ProductEditor": ".product_editor",
    "doctor": ".doctor",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module 'toolkit.widgets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
