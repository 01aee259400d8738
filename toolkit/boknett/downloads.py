"""``download(objs, folder)``: the files of report rows, concurrently, complete or absent, resumable.

* One row per input object (isbn13, type, file, bytes, http_status, outcome, message), in input order.
* Each ``REFERENCE`` URL is fetched as served (no re-encoding, no extra parameters) with
  ``Accept: application/octet-stream``, the ticket and a fresh ``Date``, through the core's download:
  the name is chosen (and reserved) as soon as the headers are in, the body goes to a temporary file
  (``.{name}.*.part``) in the folder and is renamed to that name only when complete — a cut connection
  leaves no file under the final name. Memory stays flat whatever the size (bodies over 1 MiB are
  streamed).
* Names come from ``Content-Disposition``, cleaned by :mod:`toolkit.core.files` (last path component, no
  control characters, no leading dots, reserved names prefixed), so nothing is written outside
  ``folder``. **Two objects with the same name never overwrite each other**: when the name is already held
  by another object of this run, by another object an earlier run downloaded (the journal says so), or
  by a file the toolkit did not write (unless ``overwrite=True``), the file is saved as
  ``{stem}~{isbn13}_{type}{ext}`` and the row's message says so.
* The journal (``folder/.boknett-downloads.sqlite``, :mod:`toolkit.core.journal`) keys every file by
  destination (service, base URL, user name, folder), item (``{isbn13}_{type}``) and content hash (the
  reference). A re-run over the same rows sends nothing for a file still on disk with the size the
  journal recorded; ``overwrite=True`` fetches all again. A fresh report gives fresh references (they
  expire), so its files are fetched again and replace this object's earlier file: the report does not
  say whether a file changed.
* References on another host than ``base_url`` are refused (the ticket is only ever sent to Boknett).
* 403 / 404 / 410 become rows with plain messages; 410 means the id expired: pull the report again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping
from urllib.parse import urlsplit

import pandas as pd

from ..core.bulk import failure, is_transient, run_bulk
from ..core.errors import (BadRequest, Forbidden, Gone, NotFound, ToolkitError, Unauthorized,
                           ValidationError)
from ..core.files import MAX_BYTES as MAX_NAME_BYTES
from ..core.files import safe_filename
from ..core.frames import ToolkitFrame, frame
from ..core.journal import Journal, destination
from ..core.redact import redact

#: the service's AsyncClient, duck-typed (not imported: the client imports this module)
AsyncClient = Any

__all__ = ["DOWNLOAD_SCHEMA", "download_objects", "JOURNAL_NAME", "MESSAGES", "MAX_CONCURRENCY"]

SERVICE = "boknett"
DOWNLOAD_SCHEMA = {"isbn13": "string", "type": "string", "file": "string", "bytes": "Int64",
                   "http_status": "Int64", "outcome": "string", "message": "string"}
JOURNAL_NAME = ".boknett-downloads.sqlite"
MAX_CONCURRENCY = 64
ACCEPT = {"Accept": "application/octet-stream"}
LABELS = ("downloaded", "already_downloaded", "expired", "forbidden", "not_found", "failed", "deferred")
MESSAGES = {
    403: "not downloaded: this id belongs to another Boknett user; download with the user name that pulled "
         "the report",
    404: "not downloaded: Boknett knows no object with this id; pull the report again",
    410: "not downloaded: the id has expired (Boknett's download ids live 24 hours); pull the report again "
         "(bk.objects or bk.changes) and download from the new rows",
    401: "not downloaded: Boknett refused the login ticket; check the user name and password",
    406: "not downloaded: Boknett refused the Accept header (application/octet-stream)",
}
HINTS = {403: MESSAGES[403], 404: MESSAGES[404], 410: MESSAGES[410]}


def _text(value: Any) -> str | None:
    if value is None or value is pd.NA:
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    text = str(value).strip()
    return text or None


def _records(objs: Any) -> list[dict[str, Any]]:
    if isinstance(objs, pd.Series):
        objs = [objs.to_dict()]
    if isinstance(objs, pd.DataFrame):
        missing = [c for c in ("isbn13", "type", "reference") if c not in objs.columns]
        if missing:
            raise ValidationError(f"the objects lack the column{'s' if len(missing) > 1 else ''} "
                                  f"{', '.join(missing)}", service=SERVICE,
                                  hint="Give the DataFrame that bk.objects() or bk.changes() returned.")
        rows = objs[["isbn13", "type", "reference"]].to_dict("records")
    elif isinstance(objs, Mapping):
        rows = [dict(objs)]
    else:
        try:
            rows = [dict(r) for r in objs]
        except (TypeError, ValueError):
            raise ValidationError("objs must be the DataFrame of bk.objects() (or records with isbn13, type, "
                                  "reference)", service=SERVICE, hint="Pass the result of bk.objects().") from None
    return [{"isbn13": _text(r.get("isbn13")), "type": _text(r.get("type")), "reference": _text(r.get("reference"))}
            for r in rows]


def check_concurrency(concurrency: Any) -> int:
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ValidationError(f"concurrency={concurrency!r} is not allowed", service=SERVICE,
                              hint=f"Give a whole number from 1 to {MAX_CONCURRENCY} (8 is a good default).")
    return concurrency


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


def _row(rec: Mapping[str, Any], outcome: str, status: int | None, message: str, file: str | None = None,
         nbytes: int | None = None) -> dict[str, Any]:
    return {"isbn13": rec.get("isbn13"), "type": rec.get("type"), "file": file, "bytes": nbytes,
            "http_status": status, "outcome": outcome, "message": redact(message)}


#: the failures of one download (core ``failure`` rules): outcome and plain message per error
FAILURES = [(Gone, "expired", MESSAGES[410]), (Forbidden, "forbidden", MESSAGES[403]),
            (NotFound, "not_found", MESSAGES[404]), (Unauthorized, "unauthorized", MESSAGES[401]),
            (406, "failed", MESSAGES[406])]


def _classify(exc: BaseException) -> tuple[str, int | None, str]:
    return failure(exc, FAILURES, verb="downloaded")


def _split(name: str) -> tuple[str, str]:
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext) > 16:
        return name, ""
    return stem, "." + ext


async def download_objects(client: "AsyncClient", objs: Any, folder: "str | os.PathLike[str]", *,
                           concurrency: int = 8, overwrite: bool = False, progress: bool = True,
                           journal: "str | os.PathLike[str] | None" = None) -> ToolkitFrame:
    """See the module docstring and :meth:`toolkit.boknett.AsyncClient.download`."""
    concurrency = check_concurrency(concurrency)
    records = _records(objs)
    root = Path(folder).expanduser()
    if root.exists() and not root.is_dir():
        raise ValidationError(f"{root} is a file, not a folder", service=SERVICE,
                              hint="Give download() a folder to save the files in (it is created).")
    root.mkdir(parents=True, exist_ok=True)
    root = root.resolve()
    if not records:
        df = frame([], DOWNLOAD_SCHEMA, summary="Boknett: download: 0 items")
        df.attrs.update({"kind": "assets", "service": SERVICE, "folder": str(root)})
        return df
    await client.check_credentials()  # a wrong password: one clear Unauthorized, no file attempted
    book = Journal(Path(journal).expanduser() if journal else root / JOURNAL_NAME, service=SERVICE)
    dest = destination(SERVICE, client.base_url, user=client.username, folder=str(root))
    run_id = book.start_run(SERVICE, dest, "object download", len(records))
    base_origin = _origin(client.base_url)

    owners: dict[str, str] = {}        # file name → item, from the journal (earlier runs)
    for entry in book.entries(dest):
        if entry.get("state") == "done" and entry.get("extra"):
            try:
                name = json.loads(entry["extra"]).get("file")
            except ValueError:
                name = None
            if name:
                owners[str(name)] = str(entry["item"])
    taken: dict[str, str] = {}         # file name → item, in this run (reserved when its headers arrive)
    last_of: dict[str, int] = {}
    for k, rec in enumerate(records):
        if rec["isbn13"] and rec["type"]:
            last_of[f"{rec['isbn13']}_{rec['type']}"] = k

    def free(name: str, item: str) -> bool:
        if taken.get(name, item) != item:
            return False
        owner = owners.get(name)
        if owner is not None:
            return owner == item
        return overwrite or not (root / name).exists()

    def choose(suggested: str, item: str) -> str:
        name = safe_filename(suggested, f"{item}.bin")
        if free(name, item):
            return name
        stem, ext = _split(name)
        for n in range(1, 1000):
            tail = f"~{item}{'' if n == 1 else f'-{n}'}{ext}"
            keep = stem.encode("utf-8")[:MAX_NAME_BYTES - len(tail.encode("utf-8"))].decode("utf-8", "ignore")
            candidate = safe_filename(keep + tail, f"{item}.bin")
            if free(candidate, item):
                return candidate
        raise ValidationError("no free file name for this object", service=SERVICE,
                              hint="Download into an empty folder.")

    def reserve(item: str) -> Any:
        """The core download's ``name``: this object's file name, chosen and reserved for it in one step
        (no await between: no other download of this run can take it meanwhile)."""
        def name(suggested: str) -> str:
            chosen = choose(suggested, item)
            taken[chosen] = item
            return chosen
        return name

    async def fetch(reference: str, item: str) -> Any:
        """The core's download; a clock refusal learns the server's clock and repeats once."""
        for attempt in (1, 2):
            offset = client.clock.offset
            try:
                return await client.http.download(reference, root, headers=ACCEPT, overwrite=True,
                                                  name=reserve(item), default_name=f"{item}.bin",
                                                  what="download the object file", hints=HINTS)
            except BadRequest:
                if attempt == 2:
                    raise
            # find out why (a 400 keeps its body): probe the same URL and learn the clock if that is it
            probe = await client.http.request("GET", reference, headers=ACCEPT, allow=(400,), stream=True,
                                              what="download the object file", hints=HINTS)
            try:
                if probe.status_code != 400:
                    continue
                await probe.aread()
                from .report import parse_errors
                try:
                    codes = [c for c, _ in parse_errors(probe.content)]
                except ToolkitError:
                    codes = []
                if client._clock_refused(probe, codes) and await client._learn_clock(probe, offset):
                    continue
                raise client._api_error(probe, "download the object file")
            finally:
                await probe.aclose()
        raise AssertionError("unreachable")  # pragma: no cover

    async def worker(k: int) -> dict[str, Any]:
        rec = records[k]
        isbn, kind, reference = rec["isbn13"], rec["type"], rec["reference"]
        if not (isbn and kind and reference):
            return _row(rec, "invalid", None, "not downloaded: the row lacks isbn13, type or reference")
        item = f"{isbn}_{kind}"
        if last_of.get(item) != k:
            return _row(rec, "duplicate", None, "not downloaded here: a later row names the same isbn13 and type; "
                                                "that row downloads it")
        if not reference.startswith(("http://", "https://")) or _origin(reference) != base_origin:
            return _row(rec, "refused", None, "not downloaded: the reference points to another host than Boknett's "
                                              "base URL, and the login ticket is only sent to Boknett")
        claim = book.claim(dest, item, reference, run_id=run_id, label=item)
        if claim.state == "busy":
            settled = await book.wait_settled(dest, item, reference)
            claim = book.claim(dest, item, reference, run_id=run_id, label=item)
            if claim.state == "busy":
                return _row(rec, "deferred", None, "not downloaded: another run on the same folder is fetching "
                                                   "this file; run again later")
            del settled
        if claim.state == "done" and not overwrite:
            extra = json.loads((claim.record or {}).get("extra") or "{}")
            name = extra.get("file")
            path = root / str(name) if name else None
            if path is not None and path.is_file() and path.stat().st_size == extra.get("bytes", path.stat().st_size):
                when = str((claim.record or {}).get("updated") or "")[:10]
                taken.setdefault(str(name), item)
                return _row(rec, "already_downloaded", None,
                            f"not fetched again: downloaded on {when} and still in the folder (overwrite=True "
                            "fetches it again)", file=str(name), nbytes=path.stat().st_size)
        try:
            got = await fetch(reference, item)
            name = got.filename
            owners[name] = item
        except Exception as exc:
            outcome, status, message = _classify(exc)
            book.finish(dest, item, reference, "failed", http_status=status, message=message, label=item)
            if is_transient(exc):
                raise
            return _row(rec, outcome, status, message)
        except BaseException:
            book.finish(dest, item, reference, "failed", message="interrupted", label=item)
            raise
        book.finish(dest, item, reference, "done", http_status=got.status, message="downloaded", label=item,
                    extra={"file": name, "bytes": got.bytes})
        suggested = got.suggested
        message = "downloaded" if name == suggested else \
            f"downloaded; saved as {name} because {suggested} is already another object's file"
        return _row(rec, "downloaded", got.status, message, file=name, nbytes=got.bytes)

    def on_error(k: int, exc: BaseException) -> dict[str, Any]:
        return _row(records[k], *_classify(exc))

    def on_deferred(k: int) -> dict[str, Any]:
        return _row(records[k], "deferred", None, "not downloaded: Boknett failed repeatedly, so the rest was "
                                                  "stopped; run the download again later (nothing is fetched twice)")

    try:
        await client.http.ensure_pool(concurrency)
        outcome = await run_bulk(range(len(records)), worker, service=SERVICE, desc="object download",
                                 concurrency=concurrency, on_error=on_error, on_deferred=on_deferred,
                                 progress=progress, summary_labels=LABELS)
        book.end_run(run_id, outcome.counts, outcome.summary, outcome.rows)
    finally:
        book.close()
    df = frame(outcome.rows, DOWNLOAD_SCHEMA, summary=outcome.summary)
    df.attrs.update({"kind": "assets", "service": SERVICE, "folder": str(root)})
    return df
