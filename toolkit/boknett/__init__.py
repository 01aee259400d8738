"""Boknett (Bokbasen, Norway): the report of changed book objects and their downloads.

    bk = toolkit.boknett.connect(username=…, password=…)      # or environment="sandbox"
    objs = bk.objects(after="2026-11-01")

The XML report parser is :mod:`toolkit.boknett.report`.
"""

from .client import AsyncClient, Client, connect

__all__ = ["connect", "AsyncClient", "Client"]
