"""The object report: ``objects(after=… | next=…)`` and the incremental pull ``changes(state=…)``.

* ``after`` is a :class:`datetime.date`, a :class:`datetime.datetime` or a string (``2026-11-01``,
  ``2026-11-01T08:30``, ``yyyyMMddHHmmss``); it is sent as ``yyyyMMddHHmmss`` in UTC. A date or a naive
  datetime is taken as UTC (write an aware datetime for another zone). An ``after`` older than 180 days
  (by the server's clock, as far as it is known) or a ``pagesize`` outside 1…5000 is a
  :class:`~toolkit.core.errors.ValidationError` before anything is sent.
* Paging: the first call carries ``after`` (or ``next``), every further call ``next=<the Next header>``
  and the same ``pagesize``; a page without ``Link: rel="next"`` or with no ``<OBJECT>`` is the last one
  (the core's :class:`~toolkit.core.http.CursorPaging` decides). ``attrs["next"]`` is the ``Next`` of the
  last page: pass it as ``next=`` to get only what changed since.
* ``changes(state=FILE)`` reads the cursor from ``FILE`` (plain text, the cursor on one line), pulls every
  page, and only then writes the new cursor back atomically (a temporary file in the same folder, then
  ``os.replace``); a failure part-way leaves the file as it was, byte for byte, so the next run asks again
  from the same cursor and gets exactly what it missed.
* ``out="report.parquet"`` (both functions; needs pyarrow, the optional extra ``toolkit[parquet]``):
  the pages stream into one Parquet file in constant memory — each page parsed, written as a row group,
  dropped — with the same columns, names and ``string`` dtypes as the DataFrame (codes as text, leading
  zeros kept), so ``pandas.read_parquet(out)`` gives the frame the pull without ``out`` gives. The file is
  written to a temporary name in the same folder (``.report.parquet.*.partial``) and renamed when the last
  page is in: a failure part-way leaves no file under the final name (an earlier file there stays as it
  was). Instead of the rows a one-row summary frame is returned (:data:`SUMMARY_SCHEMA`: ``path``,
  ``rows``, ``pages``, ``bytes``, ``next``; the same in ``attrs``, ``attrs["next"]`` the cursor as
  always). ``changes(state=…, out=…)`` saves the cursor only after the file is in place.
"""

from __future__ import annotations

import os
import re
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.errors import ValidationError
from ..core.files import clean_temporaries, temporary, write_atomically
from ..core.frames import ToolkitFrame, frame
from ..core.http import CursorPaging
from ..core.memory import small_pages
from ..core.redact import get_logger
from .interface import ReportClient
from .report import OBJECT_SCHEMA, parse_columns, parse_objects

__all__ = ["format_after", "check_pagesize", "pull_objects", "pull_changes", "read_state", "write_state",
           "MAX_PAGESIZE", "MAX_AGE_DAYS", "REPORT_PATH", "SUMMARY_SCHEMA"]

log = get_logger("toolkit.boknett")

SERVICE = "boknett"
MAX_PAGESIZE = 5000
MAX_AGE_DAYS = 180
REPORT_PATH = "/metadata/export/object"
_STAMP = re.compile(r"^\d{14}$")


def _as_utc(value: Any) -> datetime:
    if value is None or value is pd.NaT or (isinstance(value, float) and value != value) or value is pd.NA:
        raise ValidationError(f"after={value!r} is not a date (it is missing)", service=SERVICE,
                              hint="Give a date such as '2026-11-01', a datetime, or a timestamp yyyyMMddHHmmss.")
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    text = str(value).strip()
    if _STAMP.match(text):
        try:
            return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)
        except ValueError:
            pass
    else:
        try:
            return _as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
        except ValueError:
            pass
    raise ValidationError(f"after={text[:40]!r} is not a date", service=SERVICE,
                          hint="Give a date such as '2026-11-01', a datetime, or a timestamp yyyyMMddHHmmss.")


def format_after(value: Any, *, now: float | None = None) -> str:
    """``after`` as Boknett's ``yyyyMMddHHmmss`` (UTC); refuses one older than 180 days, and one in the
    future (a typo such as 2062 for 2026: Boknett would answer no changes, and a cursor saved from that
    answer would skip every change between the meant date and now)."""
    when = _as_utc(value)
    now_dt = datetime.fromtimestamp(time.time() if now is None else now, timezone.utc)
    if when > now_dt + timedelta(minutes=5):
        raise ValidationError(f"after={when:%Y-%m-%d %H:%M} UTC is in the future (Boknett's time is "
                              f"{now_dt:%Y-%m-%d %H:%M} UTC): no change can be that new, so nothing was pulled "
                              "and no cursor was saved", service=SERVICE,
                              hint="Check the year and the order of day and month; give a date in the last "
                                   f"{MAX_AGE_DAYS} days, such as '{now_dt - timedelta(days=7):%Y-%m-%d}'.")
    oldest = now_dt - timedelta(days=MAX_AGE_DAYS)
    if when < oldest:
        raise ValidationError(f"after={when:%Y-%m-%d %H:%M} UTC is older than {MAX_AGE_DAYS} days; Boknett "
                              "refuses that", service=SERVICE,
                              hint=f"Give a date after {oldest:%Y-%m-%d}; for older changes ask Bokbasen for a "
                                   "full export.")
    return when.strftime("%Y%m%d%H%M%S")


def check_pagesize(pagesize: Any) -> int:
    if isinstance(pagesize, bool) or not isinstance(pagesize, int) or not 1 <= pagesize <= MAX_PAGESIZE:
        raise ValidationError(f"pagesize={pagesize!r} is not allowed", service=SERVICE,
                              hint=f"Give a whole number from 1 to {MAX_PAGESIZE} (the default is {MAX_PAGESIZE}).")
    return pagesize


def _cursor_from_link(response: Any) -> str | None:
    """The ``next`` parameter of a ``Link: <…>; rel="next"`` (when a service sends no ``Next`` header)."""
    from urllib.parse import parse_qs, urlsplit

    link = response.links.get("next", {}).get("url") if "link" in response.headers else None
    if not link:
        return None
    values = parse_qs(urlsplit(link).query).get("next")
    return values[0] if values else None


def _frame(parts: list[pd.DataFrame], cursor: str | None, pages: int) -> ToolkitFrame:
    if parts:
        df = ToolkitFrame(pd.concat(parts, ignore_index=True)) if len(parts) > 1 else parts[0]
        template = frame([], OBJECT_SCHEMA, kind="assets", service=SERVICE)
        df = ToolkitFrame({c: df[c].astype(template[c].dtype) for c in OBJECT_SCHEMA}, columns=list(OBJECT_SCHEMA))
        df.attrs.update(template.attrs)
    else:
        df = frame([], OBJECT_SCHEMA, kind="assets", service=SERVICE)
    df.attrs.update({"next": cursor, "pages": pages})
    return df


def _first_query(client: ReportClient, after: Any, next: str | None, pagesize: int) -> dict[str, Any]:
    """The query of the first page; refuses bad arguments before anything is sent."""
    if (after is None) == (next is None or next == ""):
        raise ValidationError("give exactly one of after= (a date) or next= (a cursor)", service=SERVICE,
                              hint="Start with after='2026-11-01'; later pass the previous result's "
                                   "attrs['next'] as next=, or use changes(state=…), which keeps it for you.")
    size = check_pagesize(pagesize)
    if after is not None:
        return {"after": format_after(after, now=client.server_now()), "pagesize": size}
    return {"next": str(next), "pagesize": size}


async def _each_page(client: ReportClient, query: dict[str, Any], on_page: Any, *, parse: Any = parse_objects,
                     count: Any = len) -> tuple[str | None, int]:
    """Pull every page from ``query``, handing each non-empty page — as ``parse`` makes it (a DataFrame;
    plain column lists for a streamed pull) — to ``on_page`` as it arrives (nothing is kept here); returns
    the last ``Next`` cursor and the number of pages."""
    size = query["pagesize"]
    seen = {"rows": 0}
    paging = CursorPaging(header="Next", param="next", link_means_more=True, is_empty=lambda r: seen["rows"] == 0,
                          drop=("after",))
    cursor: str | None = query.get("next")
    pages = 0
    while True:
        response = await client.report_page(query)
        pages += 1
        df = parse(response.content)
        seen["rows"] = rows = count(df)
        step = paging.next(response, query)
        got = response.headers.get("Next") or _cursor_from_link(response)
        del response  # the page's bytes are parsed: not kept while it is handed on
        if rows:
            on_page(df)
        del df
        if got:
            cursor = got
        elif rows:
            raise ValidationError("Boknett sent a page of the report without a Next cursor", service=SERVICE,
                                  hint="Pull again; if it keeps happening, contact Bokbasen's support.")
        log.debug("Boknett: report page %d: %d objects, more=%s", pages, rows, step is not None)
        if step is None:
            break
        if not got or got == query.get("next"):
            break  # a Link without a new cursor: stop rather than loop
        # follow the cursor from ``Next`` (the Link says there is more; the cursor is sent encoded by us)
        query = {"next": got, "pagesize": size}
    return cursor, pages


async def pull_objects(client: ReportClient, *, after: Any = None, next: str | None = None,
                       pagesize: int = MAX_PAGESIZE, out: "str | os.PathLike[str] | None" = None) -> ToolkitFrame:
    """Every page of the report from ``after`` or ``next``; see the module docstring. With ``out`` the pages
    stream into one Parquet file and a one-row summary is returned (see the module docstring)."""
    query = _first_query(client, after, next, pagesize)
    if out is not None:
        return await _pull_to_parquet(client, query, out)
    parts: list[pd.DataFrame] = []
    cursor, pages = await _each_page(client, query, parts.append)
    return _frame(parts, cursor, pages)


# -- streaming to Parquet ---------------------------------------------------------------------------------
SUMMARY_SCHEMA = {"path": "string", "rows": "Int64", "pages": "Int64", "bytes": "Int64", "next": "string"}


def _pyarrow() -> tuple[Any, Any]:
    """``(pyarrow, pyarrow.parquet)``, imported only when a Parquet file is asked for."""
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise ValidationError("writing the report to Parquet (out=…) needs the package pyarrow, which is not "
                              "installed", service=SERVICE,
                              hint="Install it with: pip install toolkit[parquet] (or pip install pyarrow), "
                                   "or pull without out= to get a DataFrame.") from None
    return pyarrow, pyarrow.parquet


def _out_path(out: "str | os.PathLike[str]") -> Path:
    if not isinstance(out, (str, os.PathLike)) or not str(out).strip():
        raise ValidationError(f"out={out!r} is not a file path", service=SERVICE,
                              hint="Give out= the path of the Parquet file to write, e.g. out='report.parquet'.")
    path = Path(out).expanduser()
    if path.is_dir():
        raise ValidationError(f"out={path} is a folder", service=SERVICE,
                              hint="Give out= the path of a file, e.g. out='report.parquet'.")
    return path


def _parquet_schema(pa: Any) -> Any:
    """The Arrow schema of the report's file: every column ``string``, with the pandas metadata that makes
    ``pandas.read_parquet`` give them the ``string`` dtype (and ``attrs`` kind and service) of the frame.

    Written by hand (the metadata's documented layout) rather than by ``pa.Schema.from_pandas`` of an empty
    frame: that conversion touches some 7 MB of pandas and pyarrow code that a streamed pull has no other
    use for (``benchmarks/boknett_parquet.py``)."""
    import json

    meta = {"index_columns": [], "column_indexes": [],
            "columns": [{"name": name, "field_name": name, "pandas_type": "unicode", "numpy_type": "string",
                         "metadata": None} for name in OBJECT_SCHEMA],
            "attributes": {"kind": "assets", "service": SERVICE},
            "creator": {"library": "pyarrow", "version": pa.__version__}, "pandas_version": pd.__version__}
    # the attrs twice: in the pandas metadata (pyarrow 22 and newer read them there) and as pandas' own
    # PANDAS_ATTRS key (what pandas.read_parquet reads with any pyarrow)
    return pa.schema([(name, pa.string()) for name in OBJECT_SCHEMA],
                     metadata={"pandas": json.dumps(meta), "PANDAS_ATTRS": json.dumps(meta["attributes"])})


async def _pull_to_parquet(client: ReportClient, query: dict[str, Any], out: "str | os.PathLike[str]"
                           ) -> ToolkitFrame:
    """Stream the report page by page into ``out``: each page parsed, written as a row group, dropped.
    Written to a temporary file in the same folder and renamed when complete."""
    pa, pq = _pyarrow()
    path = _out_path(out)
    schema = _parquet_schema(pa)
    pool = pa.default_memory_pool()
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_temporaries(path.parent)  # what a killed pull left (a run still going keeps its own)
    fd, tmp = temporary(path.parent, path.name, ".partial")
    os.close(fd)
    count = {"rows": 0}
    writer = None
    try:
        with small_pages():  # no huge pages for a page's short-lived buffers (core/memory.py)
            writer = pq.ParquetWriter(tmp, schema)

            def write(columns: dict[str, list[Any]]) -> None:  # column lists straight to Arrow: no DataFrame
                arrays = [pa.array(columns.pop(name), type=pa.string()) for name in OBJECT_SCHEMA]
                table = pa.Table.from_arrays(arrays, schema=schema)
                del arrays
                writer.write_table(table)
                count["rows"] += table.num_rows
                del table
                # hand the page's buffers back now: Arrow's allocator otherwise keeps freed pages for a
                # while, and the pull's peak would carry a page or two more than it needs
                pool.release_unused()

            cursor, pages = await _each_page(client, query, write, parse=parse_columns,
                                             count=lambda columns: len(columns["isbn13"]))
            writer.close()
            writer = None
        os.replace(tmp, path)
    except BaseException:
        if writer is not None:
            try:
                writer.close()
            except Exception:  # pragma: no cover - the original error matters more
                pass
        Path(tmp).unlink(missing_ok=True)
        raise
    size = path.stat().st_size
    df = frame([{"path": str(path), "rows": count["rows"], "pages": pages, "bytes": size, "next": cursor}],
               SUMMARY_SCHEMA, kind="assets", service=SERVICE)
    df.attrs.update({"next": cursor, "pages": pages, "rows": count["rows"], "path": str(path)})
    log.info("Boknett: %d objects in %d pages written to %s (%d bytes)", count["rows"], pages, path.name, size)
    return df


# -- the state file ---------------------------------------------------------------------------------------
def read_state(path: "str | os.PathLike[str]") -> str | None:
    """The cursor saved in ``path``, or None when there is no such file yet."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise ValidationError(f"the state file {p} is a folder", service=SERVICE,
                              hint="Give state= the path of a file (it is created on the first pull).")
    if not p.exists():
        return None
    text = p.read_text(encoding="utf-8").strip()
    if text.startswith("{"):
        import json

        try:
            text = str(json.loads(text).get("next") or "")
        except (ValueError, AttributeError):
            text = ""
    if not text or any(ch.isspace() for ch in text):
        raise ValidationError(f"the state file {p.name} does not hold a Boknett cursor", service=SERVICE,
                              hint="Delete it (or give another state= file) and pull with after=… once.")
    return text


def write_state(path: "str | os.PathLike[str]", cursor: str) -> None:
    """Write ``cursor`` to ``path`` atomically (temporary file in the same folder, fsync, ``os.replace``)."""
    p = Path(path).expanduser()
    p.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(p, (cursor + "\n").encode("utf-8"), ".tmp")


async def pull_changes(client: ReportClient, *, state: "str | os.PathLike[str]" = "boknett.cursor",
                       after: Any = None, pagesize: int = MAX_PAGESIZE,
                       out: "str | os.PathLike[str] | None" = None) -> ToolkitFrame:
    """The incremental pull; see the module docstring. With ``out`` the pages stream into that Parquet file
    (renamed into place when complete) and the cursor is saved only after that."""
    if out is not None:
        _pyarrow()
        _out_path(out)
    cursor = read_state(state)
    if cursor is None:
        if after is None:
            raise ValidationError(f"there is no state file {Path(state).name} yet, so there is no cursor to "
                                  "continue from", service=SERVICE,
                                  hint="Give after='YYYY-MM-DD' for the first pull; the cursor is then saved "
                                       "in the state file for the next runs.")
        df = await pull_objects(client, after=after, pagesize=pagesize, out=out)
    else:
        df = await pull_objects(client, next=cursor, pagesize=pagesize, out=out)
    new = df.attrs.get("next")
    if new and new != cursor:
        write_state(state, str(new))
    df.attrs["state"] = str(Path(state).expanduser())
    df.attrs["previous"] = cursor
    return df
