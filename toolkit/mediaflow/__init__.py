"""Mediaflow (Swedish digital asset manager): files and folders as DataFrames, search, previews, download
links and formats, uploads, usage reporting.

    mf = toolkit.mediaflow.connect(client_id=…, client_secret=…, refresh_token=…)
    mf.latest(); mf.search(text); mf.folders(); mf.files(folder_id); mf.file(file_id)
    mf.previews(files); mf.formats(); mf.download_urls(files, format=0)
    mf.upload(path, folder_id); mf.upload_folder(folder, folder_id)
    mf.report_usage(files, page_url, page_name); mf.usages(files)
"""

from .client import AsyncClient, Client, connect

__all__ = ["connect", "AsyncClient", "Client"]
