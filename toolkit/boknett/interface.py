"""The small client interface Boknett's downloads are written against (no import of the client, which
imports the feature modules).

Anything with these members works: the real :class:`toolkit.boknett.AsyncClient`, or a test double.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Callable, Protocol

if TYPE_CHECKING:
    from ..core.http import Download

__all__ = ["DownloadClient"]


class DownloadClient(Protocol):
    #: the metadata base URL (references on another host are refused; part of the journal's destination)
    base_url: str
    #: the Boknett user name (part of the journal's destination: ids belong to one user)
    username: str

    async def check_credentials(self) -> None:
        """Log in now (raises Boknett's refusal of the user name and password)."""

    async def ensure_pool(self, concurrency: int) -> None:
        """Make the connection pool hold at least ``concurrency`` connections."""

    async def download_file(self, reference: str, folder: "str | os.PathLike[str]", *,
                            name: Callable[[str], str] | None = None, default_name: str = "download.bin",
                            overwrite: bool = False) -> "Download":
        """One object file into ``folder``, its name chosen by ``name`` when the headers arrive; a clock
        refusal learns the server's clock and repeats once (see the client's method)."""
