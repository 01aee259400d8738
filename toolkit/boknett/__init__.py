"""Boknett (Bokbasen, Norway): the report of changed book objects and their downloads.

    bk = toolkit.boknett.connect(username=…, password=…)      # or environment="sandbox", login_url=, base_url=
    objs = bk.objects(after="2026-11-01")                     # or next=cursor; objs.attrs["next"]
    new = bk.changes(state="boknett.cursor")                  # incremental: the cursor kept in the file
    res = bk.download(objs, "covers/")                        # one row per object; re-runs fetch nothing twice

The XML report parser is :mod:`toolkit.boknett.report`; paging and the cursor file :mod:`.objects`; downloads
:mod:`.downloads`; the command line ``toolkit boknett pull`` :mod:`.cli`. The contract: ``docs/boknett.md``.
"""

from .client import AsyncClient, Client, connect

__all__ = ["connect", "AsyncClient", "Client"]
