"""Notebook widgets: thin views over the clients (all logic lives below them).

* ``credentials_form(service)`` — a form for a service's credentials; secrets never stay in widget state
* ``image_grid(images, labels=None)`` — paged Pillow contact sheets in one image widget
* ``contact_sheet(images, labels=None)`` — one contact sheet as a ``PIL.Image.Image``
* ``product_editor(dk.products)`` — edit Dokus products, see the plan, apply on confirm
* ``doctor()`` — versions and health of the notebook environment

The names are imported eagerly: two of them (``doctor``, ``product_editor``) are also module names, and a
lazily loaded submodule would be bound on the package under the same name, shadowing the function.
"""

from __future__ import annotations

from .doctor import DoctorReport, doctor
from .forms import CredentialsForm, credentials_form
from .images import ContactSheet, ImageGrid, contact_sheet, contact_sheets, image_grid
from .product_editor import ProductEditor, product_editor

__all__ = ["credentials_form", "CredentialsForm", "image_grid", "ImageGrid", "contact_sheet", "contact_sheets",
           "ContactSheet", "product_editor", "ProductEditor", "doctor", "DoctorReport"]
