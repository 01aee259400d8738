"""The one DataFrame layer: records → DataFrame with declared columns and dtypes.

* Columns and dtypes are declared per result kind, so an empty result keeps its columns and every
  column has the same dtype whatever the data (pandas 2 and 3).
* Columns holding personal data (CPR numbers) are *masked on display only*: ``repr``, the notebook's
  HTML view and ``to_string`` show ``010190-****``; the raw value stays in the data for the code that
  needs it (``df["cpr"].tolist()``, ``to_csv``). The mask survives filtering, slicing and column access.
* A bulk result carries its one-line summary in ``df.attrs["summary"]``.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from .redact import mask_cpr, redact

__all__ = ["ToolkitFrame", "ToolkitSeries", "frame", "series", "Schema", "to_decimal", "masked_view"]

#: mask kinds: "cpr" masks a whole CPR value; "text" redacts CPRs/secrets inside free text (e.g. file names)
MASKS = {"cpr": mask_cpr, "text": lambda v: redact(v) if isinstance(v, str) else v}
_ATTR = "toolkit_masked"

#: a schema is an ordered mapping column → dtype. Dtypes: "string", "Int64", "Float64", "boolean",
#: "datetime" (naive datetime64), "date" (datetime64 at midnight), "decimal" (object of Decimal), "object".
Schema = Mapping[str, str]


def _masked_columns(obj: Any) -> dict[str, str]:
    return dict(getattr(obj, "attrs", {}).get(_ATTR, {}) or {})


def masked_view(df: pd.DataFrame) -> pd.DataFrame:
    """A plain DataFrame copy for display with the personal-data columns masked."""
    masked = _masked_columns(df)
    view = pd.DataFrame(df).copy()
    view.attrs = {}
    for column, kind in masked.items():
        if column in view.columns:
            view[column] = view[column].map(MASKS[kind]).astype("string")
    if view.index.name in masked:
        view.index = view.index.map(MASKS[masked[view.index.name]])
    return view


class ToolkitSeries(pd.Series):
    @property
    def _constructor(self) -> type:
        return ToolkitSeries

    @property
    def _constructor_expanddim(self) -> type:
        return ToolkitFrame

    def _display(self) -> pd.Series:
        masked = _masked_columns(self)
        plain = pd.Series(self).copy()
        plain.attrs = {}
        if self.name in masked:
            return plain.map(MASKS[masked[self.name]]).astype("string")
        hit = [c for c in masked if c in plain.index]
        if hit:
            plain = plain.astype(object)
            for c in hit:
                plain[c] = MASKS[masked[c]](plain[c])
        return plain

    def __repr__(self) -> str:
        return repr(self._display())

    def to_string(self, *args: Any, **kwargs: Any) -> str:  # type: ignore[override]
        return self._display().to_string(*args, **kwargs)


class ToolkitFrame(pd.DataFrame):
    @property
    def _constructor(self) -> type:
        return ToolkitFrame

    @property
    def _constructor_sliced(self) -> type:
        return ToolkitSeries

    @property
    def summary(self) -> str:
        return str(self.attrs.get("summary", ""))

    def __repr__(self) -> str:
        return repr(masked_view(self))

    def _repr_html_(self) -> str | None:  # type: ignore[override]
        return masked_view(self)._repr_html_()

    def to_string(self, *args: Any, **kwargs: Any) -> str:  # type: ignore[override]
        return masked_view(self).to_string(*args, **kwargs)

    def to_html(self, *args: Any, **kwargs: Any) -> str:  # type: ignore[override]
        return masked_view(self).to_html(*args, **kwargs)


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
    if dtype == "string":
        return values.map(lambda v: None if v is None or (isinstance(v, float) and v != v) else str(v)) \
            .astype("string")
    if dtype in ("Int64", "Float64", "boolean"):
        return values.astype(dtype) if len(values) else pd.Series([], dtype=dtype, index=values.index)
    if dtype == "datetime":
        return pd.to_datetime(values, errors="coerce").astype("datetime64[ns]")
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
) -> ToolkitFrame:
    """Build a :class:`ToolkitFrame` with exactly the declared columns (in order) and dtypes.

    ``masked`` names columns holding CPR numbers (or maps column → mask kind). ``extra="keep"`` keeps
    undeclared fields as object columns after the declared ones.
    """
    rows = records if isinstance(records, pd.DataFrame) else pd.DataFrame.from_records(list(records))
    data: dict[str, pd.Series] = {}
    for column, dtype in schema.items():
        values = rows[column] if column in rows.columns else pd.Series([None] * len(rows), dtype=object)
        data[column] = _cast(values.reset_index(drop=True).astype(object), dtype)
    df = ToolkitFrame(data, columns=list(schema))
    if extra == "keep":
        for column in rows.columns:
            if column not in schema:
                df[column] = rows[column].reset_index(drop=True).astype(object)
    if isinstance(masked, Mapping):
        masks = dict(masked)
    else:
        masks = {c: "cpr" for c in masked}
    df.attrs[_ATTR] = masks
    if summary:
        df.attrs["summary"] = summary
    if index:
        df = df.set_index(index, drop=True)
        df.attrs[_ATTR] = masks
        if summary:
            df.attrs["summary"] = summary
    return df


def series(record: Mapping[str, Any], schema: Schema, *, masked: Sequence[str] = ()) -> ToolkitSeries:
    """One result row as a Series with the schema's fields (e.g. ``put_image``'s result)."""
    row = frame([record], schema, masked=masked).iloc[0]
    row.attrs[_ATTR] = {c: "cpr" for c in masked}
    return row
