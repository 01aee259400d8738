"""The small client interface the Uddata+ audit and upload are written against (no import of the client).

Anything with these members works: the real :class:`toolkit.uddata.AsyncClient`, or a test double.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["PhotoClient"]


class PhotoClient(Protocol):
    #: the connection (``toolkit.core.http.HttpClient``): ``request()``, ``ensure_pool()``, ``auth``
    http: Any
    #: the journal key of where photos go (service, base URL, API version, institution)
    destination: str
    #: the largest photo accepted, in pixels
    max_pixels: int

    def path(self, resource: str) -> str:
        """The path of a resource under the API version and institution."""

    async def get_image_bytes(self, cpr: Any) -> bytes | None:
        """The stored JPEG of one person, or None when there is none."""

    async def check_credentials(self) -> None:
        """Fetch the access token now (raises the service's refusal)."""
