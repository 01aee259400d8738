"""Livingdocs (CMS): import images by URL as asynchronous jobs, follow them, read one result row per image.

    lv = toolkit.livingdocs.connect(base_url=…, token=…)
"""

from .client import AsyncClient, Client, connect

__all__ = ["connect", "AsyncClient", "Client"]
