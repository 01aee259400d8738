"""Mediaflow (Swedish digital asset manager): files and folders as DataFrames, previews, uploads.

    mf = toolkit.mediaflow.connect(client_id=…, client_secret=…, refresh_token=…)
"""

from .client import AsyncClient, Client, connect

__all__ = ["connect", "AsyncClient", "Client"]
