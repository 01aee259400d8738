"""The small client interfaces Boknett's feature modules (the report pull, the downloads) are written against (no import of the client, which
imports the feature modules).

Anything with these members works: the real :class:`toolkit.boknett.AsyncClient`, or a test double.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

if TYPE_CHECKING:
    from ..core.http import Download

__all__ = ["DownloadClient", "ReportClient"]


class ReportClient(Protocol):
    """What the object report pull (``objects.py``) uses."""

    def server_now(self) -> float:
        """Boknett's time as this connection knows it (epoch seconds)."""

    async def report_page(self, params: Mapping[str, Any]) -> Any:
        """One page of the object report (the answer, its body the page's XML)."""


class DownloadClient(Protocol):
    #: the metadata base URL (references on another host are refused; part of the journal's destination)
    base_url: str
    #: the Boknett user name (part of the journal's destination: ids belong to one user)
    username: str

    async def check_credentials(self) -> None:
        """Log in now (raises Boknett's refusal of the user name and password)."""

    async def ensure_pool(self, concurrency: "int | str") -> None:
        """Make the connection pool hold at least ``concurrency`` connections."""

    async def download_file(self, reference: str, folder: "str | os.PathLike[str]", *,
                            name: Callable[[str], str] | None = None, default_name: str = "download.bin",
                            overwrite: bool = False) -> "Download":
        """One object file into ``folder``, its name chosen by ``name`` when the headers arrive; a clock
        refusal learns the server's clock and repeats once (see the client's method)."""
