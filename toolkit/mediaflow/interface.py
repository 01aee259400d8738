"""The small client interfaces the Mediaflow uploads and usage reports are written against (no import of the
client, which imports those modules).

Anything with these members works: the real :class:`toolkit.mediaflow.AsyncClient`, or a test double.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["UploadClient", "UsageClient"]


class UploadClient(Protocol):
    #: the API connection (``toolkit.core.http.HttpClient``, with the access token): ``request()``,
    #: ``url_for()``, ``pause()``, ``max_connections``
    http: Any
    #: the connection for the signed upload URLs (no access token, no retries of its own)
    transfer: Any

    def destination(self, folder_id: Any) -> str:
        """The journal key of an upload folder: service, base URL and folder id (never a secret)."""

    async def check_credentials(self) -> None:
        """Fetch the access token now (raises the service's refusal)."""

    async def ensure_pool(self, concurrency: "int | str") -> None:
        """Make every connection's pool hold at least ``concurrency`` connections."""


class UsageClient(Protocol):
    #: the API connection (``toolkit.core.http.HttpClient``, with the access token)
    http: Any
    #: the API's base URL (part of the journal key of a usage report)
    base_url: str

    async def check_credentials(self) -> None:
        """Fetch the access token now (raises the service's refusal)."""

    async def ensure_pool(self, concurrency: "int | str") -> None:
        """Make every connection's pool hold at least ``concurrency`` connections."""
