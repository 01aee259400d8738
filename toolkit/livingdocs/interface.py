"""The small client interface the Livingdocs import is written against (no import of the client).

Anything with these members works: the real :class:`toolkit.livingdocs.AsyncClient`, or a test double.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol

__all__ = ["ImportClient"]


class ImportClient(Protocol):
    #: the server, with any path prefix (part of the journal's destination)
    base_url: str
    #: ``v1``, ``beta`` or a dated version (part of the journal's destination)
    api_version: str

    async def post_import(self, body: Mapping[str, Any]) -> str:
        """POST one import call; the new job's id (repeats on 429/5xx; the usage limit raises
        ``QuotaExhausted``)."""

    async def job_status(self, job_id: str, *, allow_missing: bool = False) -> dict[str, Any] | None:
        """The status body of one import job (``None`` for an unknown one when ``allow_missing``)."""

    async def media(self, external_ids: Any, system_name: str, *, concurrency: "int | str" = "auto") -> Any:
        """The media library's entries of these ids (a frame: external_id, found, media_id, title, metadata,
        url, width, height, mime_type …); the import looks there after an answer that was lost."""

    def remember_job(self, job_id: str, system_name: str | None, images: int | None, *, source: str,
                     chunk: str | None = None) -> None:
        """Add a job to those ``jobs()`` lists."""

    def remember_journal(self, path: Any) -> None:
        """Add a journal whose recorded jobs ``jobs()`` lists."""
