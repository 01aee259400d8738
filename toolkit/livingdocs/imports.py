"""Image import: check the rows, send them in chunks (one server job each), follow the jobs, one row per image.

``await client.import_images(images, system_name, webhook=None, context=None, chunk_size=100, journal=None)``
returns an :class:`ImportJob` over every server job it started. The import is three modules; this one
gathers their public names (``from toolkit.livingdocs.imports import …`` keeps working):

1. **the row checks** (:mod:`toolkit.livingdocs.rows`): every row needs an http(s) ``url`` (no ``data:``
   URL) and an ``id`` not given by an earlier row of the same call; a bad row becomes an ``invalid`` result
   row and is never sent. ``context`` larger than 8192 bytes (compact UTF-8 JSON), a missing ``system_name``,
   a bad ``webhook``, ``chunk_size`` or ``concurrency`` raise :class:`~toolkit.core.errors.ValidationError`
   before anything is sent.
2. **the sending** (:mod:`toolkit.livingdocs.sending`): chunks of at most ``chunk_size`` good rows, one
   ``POST /api/{v}/import/images`` each, on the one write protocol (:class:`toolkit.core.writes.WriteRun`,
   ``journal=`` a path, or ``None`` for a journal of this call only). A lost answer is sent again (the service
   upserts by ``systemName`` + ``id``, so nothing is stored twice); a chunk whose answers were all lost says
   ``in_doubt``. The same rows and journal again — after a kernel restart, say — re-attach to the recorded
   jobs instead of sending again.
3. **the server jobs** (:mod:`toolkit.livingdocs.jobs`): :class:`ImportJob` with ``ids``, ``status()``,
   ``wait()`` (the core job wait) and ``results()`` — one row per input row, in input order.

The contract is docs/livingdocs.md.
"""

from __future__ import annotations

from .jobs import RESULT_SCHEMA, STATUS_SCHEMA, STATUSES, Chunk, ImportJob, ServerJob, parse_status
from .rows import CONTEXT_MAX_BYTES, Row, check_images, prepare
from .sending import LOST_RESENDS, make_chunks, start_import

__all__ = ["ImportJob", "RESULT_SCHEMA", "STATUS_SCHEMA", "CONTEXT_MAX_BYTES", "check_images", "prepare",
           "ServerJob", "Chunk", "Row", "parse_status", "start_import", "make_chunks", "LOST_RESENDS", "STATUSES"]
