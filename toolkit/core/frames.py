"""The one DataFrame layer: records → DataFrame with declared columns and dtypes.

* Columns and dtypes are declared per result kind, so an empty result keeps its columns and every
  column has the same dtype whatever the data (pandas 2 and 3).
* Columns holding personal data are masked *by their dtype* (:mod:`toolkit.core.cpr_dtype`): a CPR column
  has dtype ``"cpr"`` (shown ``010190-****``), free text that may hold a CPR (file names such as
  ``0101901234.jpg``) has dtype ``"redacted"`` (shown through :func:`toolkit.core.redact.redact`). The mask
  therefore survives merge, join, concat, rename, set_index, groupby, value_counts and the rest of pandas,
  also on a plain ``pd.DataFrame``. A CPR value is the number for code and masked for eyes: ``str(v)``,
  f-strings, ``.tolist()``, ``to_csv``/``to_excel``/``to_parquet``/``to_sql`` give the digits, ``repr`` and
  every display (text, HTML, a row, ``.T``) the mask. What keeps the mask is listed in that module.
* Free text columns (``message``, ``error``, ``reason``, ``details`` by default, or ``text=[...]``) are
  shown in full, left-aligned and wrapped in the notebook's HTML view of a toolkit frame (not cut at
  pandas' 50 characters).
* A bulk result carries its one-line summary in ``df.attrs["summary"]`` (``df.summary``).
* :func:`text_frame` builds a frame of text columns from plain lists (stripped, blank → ``<NA>``, codes
  looked up), in Arrow over whole columns when pandas' ``string`` dtype is Arrow-backed: for large parsed
  documents (Boknett's object report) where building rows for :func:`frame` would cost more than the parse.
"""

from __future__ import annotations

import html as _html
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from .cpr_dtype import CprArray, CprDtype, CprStr, RedactedArray, RedactedDtype, is_masked_dtype
from .redact import mask_cpr, redact

__all__ = ["ToolkitFrame", "ToolkitSeries", "frame", "text_frame", "series", "Schema", "to_decimal", "masked_view",
           "CprDtype", "RedactedDtype", "FREE_TEXT", "free_text_html", "notebook_html", "install_notebook_html"]

#: mask kinds → the dtype that masks them: "cpr" a whole CPR value; "text" CPRs/secrets inside free text
MASKS = {"cpr": mask_cpr, "text": lambda v: redact(v) if isinstance(v, str) else v}
MASK_DTYPES = {"cpr": "cpr", "text": "redacted"}
#: columns shown in full (wrapped, left-aligned) in the HTML view unless ``text=`` says otherwise
FREE_TEXT = ("message", "error", "reason", "details")
_TEXT_ATTR = "toolkit_text_columns"

#: a schema is an ordered mapping column → dtype. Dtypes: "string", "Int64", "Float64", "boolean",
#: "datetime" (naive datetime64; a time with an offset converted to UTC), "date" (datetime64 at midnight), "decimal" (object of Decimal), "object",
#: "cpr" (CPR numbers, masked on display), "redacted" or "text" (free text, redacted on display).
Schema = Mapping[str, str]


def masked_view(df: pd.DataFrame) -> pd.DataFrame:
    """A plain DataFrame copy for display: masked-dtype columns (and index) replaced by their masked text."""
    view = pd.DataFrame(df).copy()
    view.attrs = {}
    for position, dtype in enumerate(list(view.dtypes)):
        if is_masked_dtype(dtype):
            column = view.iloc[:, position]
            formatter = column.array._formatter(boxed=True)
            view.isetitem(position, pd.Series([None if v is pd.NA else formatter(v) for v in column.array],
                                              index=view.index, dtype="string"))
    if is_masked_dtype(view.index.dtype):
        formatter = view.index.array._formatter(boxed=True)
        view.index = pd.Index([formatter(v) for v in view.index.array], name=view.index.name, dtype="string")
    return view


#: a column whose shown text runs longer than this (characters) is wrapped text: left-aligned, at least
#: ``_TEXT_MIN`` wide (never one letter a line) and at most ``_TEXT_MAX`` (lines that can be read)
_LONG, _TEXT_MIN, _TEXT_MAX = 24, "24ch", "52ch"
_INLINE, _INLINE_HEAD = "text-align: left; white-space: pre-wrap;", "text-align: left; white-space: nowrap;"
#: the notebook's table style, scoped to one output by its own class (JupyterLab lays tables out with
#: ``table-layout: fixed`` and no wrapping rules; VS Code has its own): headers on one line, so no column is
#: narrower than its header; wrapped text between _TEXT_MIN and _TEXT_MAX; a table wider than the output
#: scrolls sideways inside its own box instead of being cut
_CSS = """<style>
.{scope} {{overflow-x: auto; max-width: 100%;}}
.{scope} table {{table-layout: auto; width: auto; margin: 0 0 1em 0;}}
.{scope} table th, .{scope} table td {{white-space: nowrap;}}
.{scope} table .toolkit-text {{text-align: left; white-space: pre-wrap;}}
.{scope} table td.toolkit-long, .{scope} table tbody th.toolkit-long {{overflow-wrap: anywhere;
  min-width: {low}; max-width: {high};}}
.{scope} table thead th {{white-space: nowrap;}}
</style>"""


def _cells(row: str) -> list[str]:
    import re

    return re.findall(r"<t[hd][^>]*>.*?</t[hd]>", row, re.S)


def _text(cell: str) -> str:
    import re

    return _html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()


def _shown(label: Any) -> Any:
    return label.masked if isinstance(label, CprStr) else label


def notebook_html(data: pd.DataFrame | pd.Series, text: Sequence[str] | None = None) -> str:
    """The notebook HTML of a frame or a Series (a Series is a small table: no ``Name: …, dtype: …``).

    Every text is shown in full (not cut at pandas' ``display.max_colwidth``); columns of long text and the
    free-text columns (``text``, default :data:`FREE_TEXT`) are left-aligned and wrapped. CPR numbers and
    redacted text are masked by their dtype as everywhere in pandas' display.
    """
    import re
    import uuid

    df = data.to_frame(name="" if data.name is None else _shown(data.name)) if isinstance(data, pd.Series) \
        else pd.DataFrame(data)
    multi = isinstance(df.columns, pd.MultiIndex)
    for position, level in enumerate(df.columns.levels if multi else [df.columns]):
        # pandas draws header labels of plain dtype with str(): a CPR there (``.T``) is masked here
        if not is_masked_dtype(level.dtype) and any(isinstance(label, CprStr) for label in level):
            df = df.rename(columns=_shown, level=position if multi else None)
    with pd.option_context("display.max_colwidth", None):
        body = df.to_html(
            max_rows=pd.get_option("display.max_rows"), max_cols=pd.get_option("display.max_columns"),
            show_dimensions=pd.get_option("display.show_dimensions"), notebook=True, border=0,
            classes="toolkit-frame")
    named = {str(c) for c in (text if text is not None else FREE_TEXT)}
    header = re.search(r"<thead>.*?</thead>", body, re.S)
    header_rows = re.findall(r"<tr[^>]*>(.*?)</tr>", header.group(0), re.S) if header else []
    # columns counted from the right end of a row: the index cells on the left may span rows
    wanted = {len(names) - i for names in ([_text(c) for c in _cells(r)] for r in header_rows)
              for i, name in enumerate(names) if name in named}
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body[header.end() if header else 0:], re.S)
    long: set[int] = set()
    for row in rows:
        cells = _cells(row)
        long |= {len(cells) - i for i, cell in enumerate(cells) if len(_text(cell)) > _LONG}

    def marker(inline: str) -> Any:
        def mark_row(match: "re.Match[str]") -> str:
            cells = _cells(match.group(2))
            out = []
            for i, cell in enumerate(cells):
                at = len(cells) - i
                classes = " ".join(["toolkit-text"] * (at in wanted or at in long) + ["toolkit-long"] * (at in long))
                if classes:
                    tag, rest = cell.split(">", 1)
                    tag = tag.replace('class="', f'class="{classes} ', 1) if 'class="' in tag \
                        else f'{tag} class="{classes}" style="{inline}"'
                    cell = f"{tag}>{rest}"
                out.append(cell)
            return match.group(1) + "\n".join(out) + match.group(3)

        return mark_row

    if header is not None:  # header rows whose cells span columns (a MultiIndex's upper levels) stay as they are
        head = re.sub(r"(<tr[^>]*>\s*)((?:(?!colspan).)*?)(\s*</tr>)", marker(_INLINE_HEAD), header.group(0),
                      flags=re.S)
        body = body[:header.start()] + head + re.sub(r"(<tr[^>]*>\s*)(.*?)(\s*</tr>)", marker(_INLINE),
                                                     body[header.end():], flags=re.S)
    scope = f"toolkit-table-{uuid.uuid4().hex[:12]}"
    return _CSS.format(scope=scope, low=_TEXT_MIN, high=_TEXT_MAX) + f'<div class="{scope}">{body}</div>'


def free_text_html(df: pd.DataFrame, text: Sequence[str] | None = None) -> str:
    """The notebook HTML of ``df`` with free-text columns in full, left-aligned and wrapped (mask kept)."""
    return notebook_html(df, text)


def _formatter(data: pd.DataFrame | pd.Series) -> str | None:
    if not pd.get_option("display.notebook_repr_html"):
        return None
    names = data.attrs.get(_TEXT_ATTR) if isinstance(data, pd.DataFrame) else None
    return notebook_html(data, list(names) if names is not None else None)


def install_notebook_html(shell: Any = None) -> bool:
    """Show every DataFrame and Series in the notebook with :func:`notebook_html` (IPython's ``text/html``
    formatter, which JupyterLab and VS Code use); ``str()``, ``to_string()`` and ``text/plain`` stay pandas'
    own. Done on import inside IPython (``shell``: the running one); outside IPython (scripts, the CLI)
    nothing changes."""
    import sys

    ipython = sys.modules.get("IPython")  # not imported yet: not inside IPython, and not worth importing
    if shell is None and ipython is not None and hasattr(ipython, "get_ipython"):
        shell = ipython.get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return False
    html = shell.display_formatter.formatters["text/html"]
    html.for_type(pd.DataFrame, _formatter)
    html.for_type(pd.Series, _formatter)
    return True


class ToolkitSeries(pd.Series):
    """A result row or column of the toolkit (masking comes from the dtypes, not from this class)."""

    @property
    def _constructor(self) -> type:
        return ToolkitSeries

    @property
    def _constructor_expanddim(self) -> type:
        return ToolkitFrame

    @property
    def summary(self) -> str:
        return str(self.attrs.get("summary", ""))


class ToolkitFrame(pd.DataFrame):
    """A result table of the toolkit: ``.summary``, and free text shown in full in the notebook.

    The CPR mask does not depend on this class: it is the columns' dtype, so ``pd.DataFrame(df)`` and every
    pandas operation keep it.
    """

    @property
    def _constructor(self) -> type:
        return ToolkitFrame

    @property
    def _constructor_sliced(self) -> type:
        return ToolkitSeries

    @property
    def summary(self) -> str:
        return str(self.attrs.get("summary", ""))

    def _repr_html_(self) -> str | None:  # type: ignore[override]
        return _formatter(self)


def to_decimal(value: Any) -> Decimal | None:
    """Exact decimal from a money string ("199.50"), int or Decimal; floats are refused by design."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if value is pd.NA:
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool):
        raise ValueError(f"not an amount: {value!r}")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # a float reached us (e.g. pandas arithmetic): use its shortest repr, never its binary expansion
        return Decimal(repr(value))
    text = str(value).strip().replace(" ", "").replace(",", ".")
    if not text:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not an amount: {value!r}") from None


def _cast(values: pd.Series, dtype: str) -> pd.Series:
    if dtype == "cpr":
        return pd.Series(CprArray._from_sequence(list(values)), index=values.index)
    if dtype in ("redacted", "text"):
        return pd.Series(RedactedArray._from_sequence(
            [None if v is None or (isinstance(v, float) and v != v) else v for v in values]), index=values.index)
    if dtype == "string":
        if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):  # text already: no Python loop
            return values.astype("string")
        return values.map(lambda v: None if v is None or (isinstance(v, float) and v != v) else str(v)) \
            .astype("string")
    if dtype in ("Int64", "Float64", "boolean"):
        return values.astype(dtype) if len(values) else pd.Series([], dtype=dtype, index=values.index)
    if dtype == "datetime":
        # a time with an offset (``…Z``, ``…+02:00``, mixed offsets too) becomes UTC; a naive one stays as it is
        if not len(values):
            return pd.Series([], dtype="datetime64[ns]", index=values.index)
        return pd.to_datetime(values, errors="coerce", utc=True, format="mixed").dt.tz_localize(None) \
            .astype("datetime64[ns]")
    if dtype == "date":
        return pd.to_datetime(values, errors="coerce", format="mixed").dt.normalize().astype("datetime64[ns]") \
            if len(values) else pd.Series([], dtype="datetime64[ns]", index=values.index)
    if dtype == "decimal":
        return values.map(to_decimal).astype(object)
    return values.astype(object)


def frame(
    records: Iterable[Mapping[str, Any]] | pd.DataFrame,
    schema: Schema,
    *,
    index: str | None = None,
    masked: Mapping[str, str] | Sequence[str] = (),
    summary: str | None = None,
    extra: str = "drop",
    text: Sequence[str] | None = None,
    kind: str | None = None,
    service: str | None = None,
) -> ToolkitFrame:
    """Build a :class:`ToolkitFrame` with exactly the declared columns (in order) and dtypes.

    ``masked`` names columns holding CPR numbers (or maps column → mask kind: ``"cpr"`` or ``"text"``);
    they get the dtype ``"cpr"`` / ``"redacted"`` whose display is masked wherever pandas shows them. A
    schema may also declare ``"cpr"`` or ``"redacted"`` directly. ``extra="keep"`` keeps undeclared fields
    as object columns after the declared ones. ``text`` names the free-text columns shown in full in the
    notebook (default: those of :data:`FREE_TEXT` that exist). ``kind`` (``"assets"``, ``"records"``,
    ``"jobs"`` … see docs/vocabulary.md) and ``service`` (the registered name) go to ``df.attrs``.
    """
    masks = dict(masked) if isinstance(masked, Mapping) else {c: "cpr" for c in masked}
    unknown = set(masks.values()) - set(MASK_DTYPES)
    if unknown:
        raise ValueError(f"unknown mask kind {sorted(unknown)!r}: use 'cpr' or 'text'")
    rows = records if isinstance(records, pd.DataFrame) else pd.DataFrame.from_records(list(records))
    data: dict[str, pd.Series] = {}
    for column, dtype in schema.items():
        values = rows[column] if column in rows.columns else pd.Series([None] * len(rows), dtype=object)
        if column in masks:
            dtype = MASK_DTYPES[masks[column]]
        data[column] = _cast(values.reset_index(drop=True).astype(object), dtype)
    df = ToolkitFrame(data, columns=list(schema))
    if extra == "keep":
        for column in rows.columns:
            if column not in schema:
                values = rows[column].reset_index(drop=True).astype(object)
                df[column] = _cast(values, MASK_DTYPES[masks[column]]) if column in masks else values
    if text is not None:
        df.attrs[_TEXT_ATTR] = list(text)
    if summary:
        df.attrs["summary"] = summary
    if kind is not None:
        df.attrs["kind"] = kind
    if service is not None:
        df.attrs["service"] = service
    if index:
        attrs = dict(df.attrs)
        df = df.set_index(index, drop=True)
        df.attrs.update(attrs)
    return df


@lru_cache(maxsize=1)
def _whitespace() -> str:
    """The characters ``str.strip()`` removes (none lies above U+3000: tests/test_boknett_report.py)."""
    return "".join(ch for ch in map(chr, range(0x3001)) if ch.isspace())


def text_frame(raw: dict[str, list[Any]], *, columns: Sequence[str] | None = None,
               codes: Mapping[str, tuple[str, Mapping[str, str]]] | None = None) -> ToolkitFrame:
    """A frame of text columns from plain lists (one list of ``str`` or ``None`` per column, all as long):
    every value stripped of surrounding whitespace (what ``str.strip()`` strips), a blank one ``<NA>``, every
    column of dtype ``"string"`` exactly as :func:`frame` gives it. ``codes`` adds columns of labels looked up
    in a table by another column's (stripped) value — ``{"type_name": ("type", {"ol": "small cover"})}``; a
    value not in the table, or missing, gives ``<NA>``. ``columns`` is the frame's columns in order, each a
    key of ``raw`` or ``codes`` (default: ``raw``'s, then ``codes``').

    Made for large tables: when pandas' ``string`` dtype is Arrow-backed, the columns are built, stripped and
    looked up in Arrow over whole columns, and each list is taken out of ``raw`` as soon as its column is made
    (a lower memory peak: ``raw`` is emptied; pass a copy to keep it). Otherwise (the ``python`` string
    storage, no pyarrow, or an older pandas/pyarrow that builds these otherwise) through :func:`frame`, with
    the same result.
    """
    codes = dict(codes or {})
    order = list(columns) if columns is not None else [*raw, *codes]
    sources = {source for source, _ in codes.values()}
    unknown = [name for name in order if name not in raw and name not in codes] + sorted(sources - set(raw))
    if unknown:
        raise ValueError(f"text_frame: no list in raw for {unknown!r}")
    needed = [name for name in raw if name in order or name in sources]
    dtype = _cast(pd.Series([], dtype=object), "string").dtype  # frame()'s "string"
    arrays: dict[str, Any] = {}
    if getattr(dtype, "storage", None) == "pyarrow":
        try:
            import pyarrow as pa
            import pyarrow.compute as pc
            from pandas.arrays import ArrowStringArray

            text = pa.large_string()
            for name in needed:
                array = pc.utf8_trim(pa.array(raw[name], type=text), characters=_whitespace())
                empty = pc.equal(array, "")
                arrays[name] = pc.if_else(empty, pa.scalar(None, text), array) if pc.any(empty).as_py() else array
                del raw[name]  # each list goes as soon as its column is in Arrow (a lower peak)
            for name, (source, table) in codes.items():
                found = pc.index_in(arrays[source], value_set=pa.array(list(table), type=text))
                arrays[name] = pa.array(list(table.values()), type=text).take(found)
            df = ToolkitFrame({name: ArrowStringArray(arrays[name]) for name in order}, columns=order, copy=False)
            if all(column == dtype for column in df.dtypes):
                return df
        except (ImportError, TypeError, ValueError, NotImplementedError):  # older pandas/pyarrow: frame()'s way
            pass
        for name in needed:  # hand back what was taken (already stripped: stripping again changes nothing)
            if name not in raw:
                raw[name] = arrays[name].to_pylist()
    cleaned = {name: [(value.strip() or None) if value is not None else None for value in raw[name]]
               for name in needed}
    for name, (source, table) in codes.items():
        cleaned[name] = [table.get(value) if value is not None else None for value in cleaned[source]]
    return frame(pd.DataFrame(cleaned), dict.fromkeys(order, "string"))


def series(record: Mapping[str, Any], schema: Schema, *, masked: Mapping[str, str] | Sequence[str] = (),
           index: str | None = None, extra: str = "drop", kind: str | None = None, service: str | None = None
           ) -> ToolkitSeries:
    """One result row as a Series with the schema's fields (e.g. ``put_image``'s result): the one row of
    :func:`frame` with the same arguments, so ``index`` names the field that becomes the Series' ``name``
    and ``kind`` / ``service`` are in its ``attrs``.

    A row mixes dtypes, so it is of object dtype: its CPR value is a :class:`toolkit.core.cpr_dtype.CprStr`
    (the number for code — ``str()``, f-strings —, shown masked by ``repr`` and in the row's display).
    """
    row = frame([record], schema, masked=masked, index=index, extra=extra, kind=kind, service=service).iloc[0]
    row.attrs.update({k: v for k, v in (("kind", kind), ("service", service)) if v is not None})
    return row


install_notebook_html()
