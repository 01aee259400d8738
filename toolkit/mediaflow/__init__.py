"""Mediaflow (Swedish digital asset manager): files and folders as DataFrames, previews, uploads.

    mf = toolkit.mediaflow.connect(client_id=…, client_secret=…, refresh_token=…)
    mf.latest(); mf.folders(); mf.files(folder_id); mf.file(file_id)
    mf.previews(files); mf.upload(path, folder_id); mf.upload_folder(folder, folder_id)
"""

from .client import AsyncClient, Client, connect

__all__ = ["connect", "AsyncClient", "Client"]
