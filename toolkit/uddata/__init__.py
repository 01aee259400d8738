"""Uddata+ (Danish education administration): students, photos, photo audit and folder upload.

    import toolkit
    ud = toolkit.uddata.connect(**sb.credentials("uddata"))     # or environment=…, institution=…, …
    ud.students()                                               # roster, CPR masked on display
    ud.audit(["0101901234", …])                                 # who lacks a photo
    ud.upload_folder("photos/", dry_run=True)                   # what would be sent
    ud.prepare_photos("photos/")                                # upright sRGB JPEGs ≤ 10 MB, no metadata
    toolkit.uddata.cpr.validate("010190-1234")                  # CprCheck (truthy when valid)

``connect()`` returns the sync :class:`Client`; :class:`AsyncClient` is the same client for ``await``.
"""

from __future__ import annotations

from . import cpr
from .client import ENVIRONMENTS, AsyncClient, Client, connect

__all__ = ["connect", "AsyncClient", "Client", "cpr", "ENVIRONMENTS"]
