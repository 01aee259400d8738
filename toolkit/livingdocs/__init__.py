"""Livingdocs (CMS): import images by URL as asynchronous jobs, follow them, read one result row per image.

    lv = toolkit.livingdocs.connect(base_url=…, token=…)
    job = lv.import_images(df, system_name="archive")
    job.wait(); job.results()

See :mod:`toolkit.livingdocs.client`, :mod:`toolkit.livingdocs.imports` (the import: its row checks in
:mod:`~toolkit.livingdocs.rows`, its sending in :mod:`~toolkit.livingdocs.sending`, its server jobs in
:mod:`~toolkit.livingdocs.jobs`) and :mod:`toolkit.livingdocs.webhooks`.
"""

from .client import AsyncClient, Client, connect
from .imports import ImportJob, check_images
from .webhooks import WebhookInbox

__all__ = ["connect", "AsyncClient", "Client", "ImportJob", "WebhookInbox", "check_images"]
