"""``download(objs, folder)``: the files of report rows, concurrently, complete or absent, resumable, each
object's file saved exactly once.

* One row per input object (isbn13, type, outcome, message, file, bytes, http_status), in input order;
  ``message`` only where it says more than the outcome (empty for a plain ``downloaded``).
* Each ``url`` (the report's ``REFERENCE``) is fetched as served (no re-encoding, no extra parameters) with
  ``Accept: application/octet-stream``, the ticket and a fresh ``Date``, through the client's
  :meth:`~toolkit.boknett.AsyncClient.download_file` (the core's download with Boknett's clock repeat): the
  name is chosen (and reserved) as soon as the headers are in, the body goes to a temporary file
  (``.{name}.~tk{host}-{pid}~….part``) in the folder and is renamed to that name only when complete — a cut
  connection leaves no file under the final name. Memory stays flat whatever the size (bodies over 1 MiB
  are streamed). Temporaries a killed run left are removed by the next download into the same folder.
* Names come from ``Content-Disposition``, cleaned by :mod:`toolkit.core.files` (last path component, no
  control characters, no leading dots, reserved names prefixed), so nothing is written outside
  ``folder``. **Two objects with the same name never overwrite each other**: when the name is already held
  by another object of this run, by another object an earlier run downloaded (the journal says so), or
  by a file the toolkit did not write (unless ``overwrite=True``), the file is saved as
  ``{stem}~{isbn13}_{type}{ext}`` and the row's message says so.
* Every file goes through the one write protocol (:mod:`toolkit.core.writes`). The journal
  (``folder/.boknett-downloads.sqlite``) keys every file by destination (service, base URL, user name,
  folder), item (``{isbn13}_{type}``) and content hash (the reference). The name reserved for an object is
  noted in the journal before its body is written (with what was under that name then), so a run killed
  after the file was renamed into place but before the journal recorded it is recognised by the next run:
  the file is there, complete, and is neither fetched again nor saved a second time under another name.
  A name noted for an object stays that object's: fetched again, its file replaces what is there.
* A re-run over the same rows sends nothing for a file still on disk with the size the journal recorded;
  ``overwrite=True`` fetches all again. A fresh report gives fresh references (they expire), so its files
  are fetched again and replace this object's earlier file: the report does not say whether a file changed.
* References on another host than ``base_url`` are refused (the ticket is only ever sent to Boknett).
* 403 / 404 / 410 become rows with plain messages; 410 means the id expired: pull the report again.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import stat
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping
from urllib.parse import urlsplit

import pandas as pd

from ..core.bulk import ItemFailed, check_concurrency, failure, run_bulk
from ..core.errors import Forbidden, Gone, NotFound, Unauthorized, ValidationError
from ..core.files import MAX_BYTES as MAX_NAME_BYTES
from ..core.files import safe_filename
from ..core.frames import ToolkitFrame, frame
from ..core.journal import destination
from ..core.redact import redact
from ..core.writes import ALREADY, BUSY, FAILED, FOUND, IN_DOUBT, SENT, Settled, Stored, WriteRun, in_doubt_message
from .interface import DownloadClient

__all__ = ["DOWNLOAD_SCHEMA", "download_objects", "JOURNAL_NAME", "MESSAGES", "MAX_CONCURRENCY"]

SERVICE = "boknett"
DOWNLOAD_SCHEMA = {"isbn13": "string", "type": "string", "outcome": "string", "message": "string",
                   "file": "string", "bytes": "Int64", "http_status": "Int64"}
JOURNAL_NAME = ".boknett-downloads.sqlite"
MAX_CONCURRENCY = 64
LABELS = ("downloaded", "already_downloaded", "expired", "forbidden", "not_found", "failed", "in_doubt",
          "deferred")
MESSAGES = {
    403: "not downloaded: this id belongs to another Boknett user; download with the user name that pulled "
         "the report",
    404: "not downloaded: Boknett knows no object with this id; pull the report again",
    410: "not downloaded: the id has expired (Boknett's download ids live 24 hours); pull the report again "
         "(bk.objects or bk.changes) and download from the new rows",
    401: "not downloaded: Boknett refused the login ticket; check the user name and password",
    406: "not downloaded: Boknett refused the Accept header (application/octet-stream)",
}

#: the failures of one download (core ``failure`` rules): outcome and plain message per error
FAILURES = [(Gone, "expired", MESSAGES[410]), (Forbidden, "forbidden", MESSAGES[403]),
            (NotFound, "not_found", MESSAGES[404]), (Unauthorized, "unauthorized", MESSAGES[401]),
            (406, "failed", MESSAGES[406])]

Row = dict[str, Any]


# -- the input ------------------------------------------------------------------------------------------
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


def _number(value: Any) -> str | None:
    """An ISBN/EAN as text whatever shape it came in: ``"9788215012049"``, the int ``9788215012049`` (a
    table read back with pandas), or the float ``9788215012049.0`` (the same column with a gap) all give
    ``"9788215012049"``, so the object's journal key and file-name suffix do not depend on the shape."""
    if isinstance(value, bool):
        return _text(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, (float, Decimal)) and math.isfinite(value) and value == int(value):
        return str(int(value))
    return _text(value)


def _records(objs: Any) -> list[dict[str, Any]]:
    if isinstance(objs, pd.Series):
        objs = [objs.to_dict()]
    if isinstance(objs, pd.DataFrame):
        if "url" not in objs.columns and "reference" in objs.columns:  # a table saved before ``url`` replaced it
            objs = objs.rename(columns={"reference": "url"})
        missing = [c for c in ("isbn13", "type", "url") if c not in objs.columns]
        if missing:
            raise ValidationError(f"the objects lack the column{'s' if len(missing) > 1 else ''} "
                                  f"{', '.join(missing)}", service=SERVICE,
                                  hint="Give the DataFrame that bk.objects() or bk.changes() returned.")
        columns = ["isbn13", "type", "url"] + (["ean"] if "ean" in objs.columns else [])
        rows = objs[columns].to_dict("records")
    elif isinstance(objs, Mapping):
        rows = [dict(objs)]
    else:
        try:
            rows = [dict(r) for r in objs]
        except (TypeError, ValueError):
            raise ValidationError("objs must be the DataFrame of bk.objects() (or records with isbn13, type, "
                                  "url)", service=SERVICE, hint="Pass the result of bk.objects().") from None
    records = []
    for r in rows:
        isbn13 = _number(r.get("isbn13"))
        # an object without an ISBN-13 is known by its EAN (as Bokbasen's SDK names its file)
        records.append({"isbn13": isbn13, "code": isbn13 or _number(r.get("ean")), "type": _text(r.get("type")),
                        "reference": _text(r.get("url", r.get("reference")))})
    return records


def _folder(folder: "str | os.PathLike[str]") -> Path:
    """The target folder, created, as an absolute path."""
    root = Path(folder).expanduser()
    if root.exists() and not root.is_dir():
        raise ValidationError(f"{root} is a file, not a folder", service=SERVICE,
                              hint="Give download() a folder to save the files in (it is created).")
    root.mkdir(parents=True, exist_ok=True)
    return root.resolve()


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


# -- rows -----------------------------------------------------------------------------------------------
def _row(rec: Mapping[str, Any], outcome: str, status: int | None, message: str, file: str | None = None,
         nbytes: int | None = None) -> Row:
    # the message only where it says more than the outcome (no "downloaded" beside ``downloaded``)
    return {"isbn13": rec.get("isbn13"), "type": rec.get("type"), "outcome": outcome,
            "message": redact(message) if message and message != outcome else None, "file": file, "bytes": nbytes,
            "http_status": status}


def _classify(exc: BaseException) -> tuple[str, int | None, str]:
    return failure(exc, FAILURES, verb="downloaded")


def _frame(rows: list[Row], summary: str, root: Path) -> ToolkitFrame:
    df = frame(rows, DOWNLOAD_SCHEMA, summary=summary, kind="assets", service=SERVICE)
    df.attrs["folder"] = str(root)
    return df


# -- files in the folder --------------------------------------------------------------------------------
def _extra(entry: Mapping[str, Any] | None) -> dict[str, Any]:
    """The journal entry's ``extra``: the file name (noted or done), its bytes, what was there before."""
    try:
        value = json.loads((entry or {}).get("extra") or "{}")
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


def _identity(path: Path, info: "os.stat_result | None | bool" = False) -> list[int] | None:
    """``[inode, size, mtime_ns]`` of the regular file at ``path`` (a link is not followed), or None; ``info``:
    its ``lstat`` already taken (None: nothing there)."""
    info = _lstat(path) if info is False else info
    if info is None or not stat.S_ISREG(info.st_mode):
        return None
    return [info.st_ino, info.st_size, info.st_mtime_ns]


def _split(name: str) -> tuple[str, str]:
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext) > 16:
        return name, ""
    return stem, "." + ext


class _Names:
    """Which object holds which file name in the folder: the files the journal says are done (``owners``),
    names earlier runs noted for an object and may not have finished (``noted``), and the names reserved in
    this run (``taken``). A name is chosen and reserved in one step, with no ``await`` in between."""

    def __init__(self, root: Path, overwrite: bool, entries: Iterable[Mapping[str, Any]]) -> None:
        self.root, self.overwrite = root, overwrite
        self.owners: dict[str, str] = {}
        self.noted: dict[str, str] = {}
        self.taken: dict[str, str] = {}
        #: the last name looked at in the folder and its lstat: choosing a name and noting what was there
        #: happen with no ``await`` in between, so one system call serves both (one per file, not two)
        self.looked: tuple[str, os.stat_result | None] | None = None
        for entry in entries:  # oldest first: the latest entry of a name wins
            name = _extra(entry).get("file")
            if name:
                held = self.owners if entry.get("state") == "done" else self.noted
                held[str(name)] = str(entry["item"])

    def free(self, name: str, item: str) -> bool:
        """Whether ``item`` may save its file as ``name``."""
        holder = self.taken.get(name) or self.owners.get(name)
        if holder is not None:
            return holder == item
        noted = self.noted.get(name)
        if noted == item:  # an earlier attempt of this object reserved it: its own (replaced when fetched)
            return True
        info = _lstat(self.root / name)
        self.looked = (name, info)
        there = info is not None
        if noted is not None and there:  # probably another object's file an interrupted run saved
            return False
        return self.overwrite or not there

    def choose(self, suggested: str, item: str) -> str:
        self.looked = None  # only a look of this choice may stand for the note that follows it
        name = safe_filename(suggested, f"{item}.bin")
        if self.free(name, item):
            return name
        stem, ext = _split(name)
        for n in range(1, 1000):
            tail = f"~{item}{'' if n == 1 else f'-{n}'}{ext}"
            keep = stem.encode("utf-8")[:MAX_NAME_BYTES - len(tail.encode("utf-8"))].decode("utf-8", "ignore")
            candidate = safe_filename(keep + tail, f"{item}.bin")
            if self.free(candidate, item):
                return candidate
        raise ValidationError("no free file name for this object", service=SERVICE,
                              hint="Download into an empty folder.")

    def identity(self, name: str) -> list[int] | None:
        """:func:`_identity` of the folder's ``name`` — from the look :meth:`free` just took when it was this
        name (used at once, by the ``name`` callback, before anything can change the folder)."""
        looked, self.looked = self.looked, None
        path = self.root / name
        return _identity(path, looked[1]) if looked is not None and looked[0] == name else _identity(path)

    def reserve(self, item: str, note: Callable[[str], None]) -> Callable[[str], str]:
        """The download's ``name`` callback: this object's file name, chosen, reserved and noted (``note``)
        before the body is written."""
        def name(suggested: str) -> str:
            chosen = self.choose(suggested, item)
            self.taken[chosen] = item
            note(chosen)
            return chosen
        return name


# -- one call -------------------------------------------------------------------------------------------
class _Download:
    """One ``download()`` call: the checks of a row, and each object through the write protocol."""

    def __init__(self, client: DownloadClient, run: WriteRun, root: Path, records: list[dict[str, Any]],
                 overwrite: bool) -> None:
        self.client, self.run, self.root, self.records, self.overwrite = client, run, root, records, overwrite
        self.origin = _origin(client.base_url)
        self.names = _Names(root, overwrite, run.journal.entries(run.destination))
        self.last_of = {f"{r['code']}_{r['type']}": k for k, r in enumerate(records) if r["code"] and r["type"]}

    def refused(self, k: int) -> Row | None:
        """The row of an object that is not fetched (incomplete, named again later, another host), or None."""
        rec = self.records[k]
        if not (rec["code"] and rec["type"] and rec["reference"]):
            return _row(rec, "invalid", None, "not downloaded: the row lacks isbn13 (or ean), type or url")
        if self.last_of.get(f"{rec['code']}_{rec['type']}") != k:
            return _row(rec, "duplicate", None, "not downloaded here: a later row names the same isbn13 and type; "
                                                "that row downloads it")
        if not rec["reference"].startswith(("http://", "https://")) or _origin(rec["reference"]) != self.origin:
            return _row(rec, "refused", None, "not downloaded: the url points to another host than "
                                              "Boknett's base URL, and the login ticket is only sent to Boknett")
        return None

    async def one(self, k: int) -> Row:
        """The bulk worker: one object's row (a transient failure is raised for the circuit breaker)."""
        row = self.refused(k)
        if row is not None:
            return row
        rec = self.records[k]
        item, reference = f"{rec['code']}_{rec['type']}", str(rec["reference"])
        settled = await self.run.write(item, reference, lambda: self.send(item, reference), label=item,
                                       recognise=self.recognise, keep=self.keep)
        row = self.row_of(rec, item, settled)
        if settled.state in (FAILED, IN_DOUBT) and settled.transient:
            raise ItemFailed(row, transient=True)
        return row

    async def send(self, item: str, reference: str) -> Stored:
        def note(name: str) -> None:  # before the body is written: what the next run needs to recognise it
            self.run.note(item, reference, file=name, before=self.names.identity(name), bytes=None)

        got = await self.client.download_file(reference, self.root, name=self.names.reserve(item, note),
                                              default_name=f"{item}.bin", overwrite=True)
        return Stored(got, http_status=got.status, message="downloaded",
                      extra={"file": got.filename, "bytes": got.bytes})

    async def recognise(self, entry: Mapping[str, Any]) -> Stored | None:
        """Whether an earlier attempt saved this object's file complete: the name it noted holds a regular
        file that was put there after the note (only a complete body is ever renamed into place)."""
        extra = _extra(entry)
        name = extra.get("file")
        if not name or "before" not in extra:
            return None
        now = _identity(self.root / str(name))
        if now is None or now == extra["before"] or extra.get("bytes") not in (None, now[1]):
            return None
        return Stored(None, message="downloaded", extra={"file": str(name), "bytes": now[1]})

    def keep(self, entry: Mapping[str, Any]) -> bool:
        """Whether the file the journal says is done is still in the folder with its size."""
        if self.overwrite:
            return False
        extra = _extra(entry)
        now = _identity(self.root / str(extra["file"])) if extra.get("file") else None
        return now is not None and now[1] == extra.get("bytes", now[1])

    def row_of(self, rec: Mapping[str, Any], item: str, settled: Settled) -> Row:
        """The result row of one settled object."""
        state, stored = settled.state, settled.stored
        if state == SENT and stored is not None:
            got = stored.value
            message = "" if got.filename == got.suggested else \
                f"downloaded; saved as {got.filename} because {got.suggested} is already another object's file"
            return _row(rec, "downloaded", got.status, message, file=got.filename, nbytes=got.bytes)
        if state == FOUND and stored is not None:
            found = dict(stored.extra or {})
            if settled.checked:  # this run's answer broke off after the file was in place
                return _row(rec, "downloaded", None, "", file=found["file"], nbytes=found["bytes"])
            return _row(rec, "already_downloaded", None, "not fetched again: an earlier run that was interrupted "
                        "had saved it complete", file=found["file"], nbytes=found["bytes"])
        if state == ALREADY:
            done = _extra(settled.entry)
            self.names.taken.setdefault(str(done["file"]), item)
            return _row(rec, "already_downloaded", None, f"not fetched again: downloaded on {settled.when} and "
                        "still in the folder (overwrite=True fetches it again)", file=done["file"],
                        nbytes=done.get("bytes"))
        if state == BUSY:
            return _row(rec, "deferred", None, "not downloaded: another run on the same folder is fetching this "
                                               "file; run again later")
        if state == IN_DOUBT:
            return _row(rec, "in_doubt", getattr(settled.error, "status", None),
                        in_doubt_message(SERVICE, settled.error))
        return _row(rec, *_classify(settled.error or RuntimeError("not downloaded")))

    def on_error(self, k: int, exc: BaseException) -> Row:
        return _row(self.records[k], *_classify(exc))

    def on_deferred(self, k: int) -> Row:
        return _row(self.records[k], "deferred", None, "not downloaded: Boknett failed repeatedly, so the rest "
                                                       "was stopped; run the download again later (nothing is "
                                                       "fetched twice)")


async def download_objects(client: DownloadClient, objs: Any, folder: "str | os.PathLike[str]", *,
                           concurrency: "int | str" = "auto", overwrite: bool = False, progress: bool = True,
                           journal: "str | os.PathLike[str] | None" = None) -> ToolkitFrame:
    """See the module docstring and :meth:`toolkit.boknett.AsyncClient.download`."""
    concurrency = check_concurrency(concurrency, SERVICE, maximum=MAX_CONCURRENCY)
    records = _records(objs)
    root = _folder(folder)
    if not records:
        return _frame([], "Boknett: download: 0 items", root)
    await client.check_credentials()  # a wrong password: one clear Unauthorized, no file attempted
    dest = destination(SERVICE, client.base_url, user=client.username, folder=str(root))
    book = Path(journal).expanduser() if journal else root / JOURNAL_NAME
    with WriteRun(SERVICE, dest, "object download", journal=book, items=len(records), folder=root) as run:
        job = _Download(client, run, root, records, overwrite)
        await client.ensure_pool(concurrency)
        outcome = await run_bulk(range(len(records)), job.one, service=SERVICE, desc="object download",
                                 concurrency=concurrency, on_error=job.on_error, on_deferred=job.on_deferred,
                                 progress=progress, summary_labels=LABELS)
        run.end(outcome)
    return _frame(outcome.rows, outcome.summary, root)
