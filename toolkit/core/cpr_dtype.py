"""Pandas extension dtypes whose *display* is masked: CPR numbers (``"cpr"``) and free text that may hold
one (``"redacted"``, e.g. file names like ``0101901234.jpg``).

The mask travels with the data, not with a DataFrame subclass: a column of dtype ``cpr`` keeps the dtype
through ordinary pandas work, and pandas renders it through the array's own formatter, so it shows
``010190-****`` wherever pandas draws a table. The raw value is there for the code that asks for it.

    >>> import pandas as pd
    >>> from toolkit.core.cpr_dtype import CprDtype
    >>> s = pd.Series(["0101901234"], dtype="cpr")
    >>> s.tolist(), str(s.dtype)
    (['0101901234'], 'cpr')
    >>> print(s.to_string())
    0    010190-****

**Shown masked** (each checked by ``tests/test_cpr_dtype.py`` / ``tests/test_core_frames.py``):
``repr``/``print``/``to_string`` and the notebook's HTML (``_repr_html_``, ``to_html``) after ``merge`` of two
CPR columns (and a CPR frame on the left with a plain one), ``join``, ``pd.concat`` with a plain text frame
(either order: the common dtype of ``cpr`` and plain text is ``cpr``), ``rename``, ``set_index("cpr")`` (index
and MultiIndex show the mask), ``groupby("cpr")`` (result index), ``value_counts()``, ``unique()``,
``pd.DataFrame(df)``, ``pd.Series(col)``, ``head``, boolean filtering, ``.loc``/``.iloc``, ``sort_values``,
``drop_duplicates``, ``fillna``, ``pivot_table``, ``melt``, ``apply``/``map`` (identity), pickling.
Where pandas falls back to object dtype the values are :class:`CprStr` scalars, shown masked too: ``.T`` of
a mixed frame, a row ``df.iloc[0]``, ``astype(object)``, ``describe()``, ``print(df.to_dict())`` /
``to_dict("records")``, ``itertuples``, ``.style`` (the Styler renders ``str()`` of each cell),
a scalar's ``repr``/``str``/f-string. Parquet through pyarrow gives the dtype back
(``__arrow_array__``/``__from_arrow__``; the file holds the raw values).

**Raw, for the code that asks**: ``.tolist()``, ``.to_numpy()``, ``np.asarray``, ``astype(str)`` /
``astype("string")``, ``to_csv``, ``to_json``, ``to_parquet``, comparisons (``df["cpr"] == "0101901234"``,
``isin``), ``.loc["0101901234"]`` on a CPR index, merge keys. A scalar (``df["cpr"].iloc[0]``, iteration) is
a :class:`CprStr`: a ``str`` subclass *equal to, hashing as and concatenating as* the raw text
(``v + ".jpg"``, ``json.dumps``, ``open(v)``, dict keys); only its ``str()``, ``repr()`` and ``format()``
(f-strings, ``%s``, logging) show the mask. ``v.raw`` or :func:`raw` give the plain ``str``;
``toolkit.uddata.cpr.normalize(v)`` gives the raw number. So build URLs/paths from ``normalize(v)`` or
``v.raw``, never ``f"{v}"``.

**Cannot keep the mask** (pandas or the caller builds plain text from the values):

* ``plain.merge(students, on="cpr")`` with the *plain* frame on the left: pandas casts both keys to object
  and keeps the left's plain strings (cast first: ``plain.astype({"cpr": "cpr"})``);
* rebuilding from scalars or rows: ``iterrows()`` (each row is a new Series), ``pd.DataFrame([row])``,
  ``pd.Series(list_of_values)`` infer pandas' own ``str`` dtype from the ``CprStr`` values, which keeps
  their content and so displays it raw;
* anything built from ``tolist()``/``to_numpy()``/``astype(str)`` (raw by definition);
* ``.str`` methods are not implemented on these dtypes (``AttributeError``): ``astype(str).str…`` is the
  explicit, raw way;
* ``to_markdown`` needs ``tabulate`` (not installed here, unchecked).
"""

from __future__ import annotations

import operator
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionArray, ExtensionDtype, register_extension_dtype, take
from pandas.api.indexers import check_array_indexer
from pandas.api.types import is_integer, is_list_like

from .redact import mask_cpr, redact

__all__ = ["CprDtype", "CprArray", "CprStr", "RedactedDtype", "RedactedArray", "RedactedStr", "raw",
           "is_masked_dtype"]


def raw(value: Any) -> Any:
    """The plain ``str`` of a masked scalar (anything else is returned unchanged)."""
    return str.__str__(value) if isinstance(value, str) else value


class CprStr(str):
    """A CPR value taken out of a ``cpr`` column: the raw text, shown masked by ``str``/``repr``/``format``."""

    __slots__ = ()

    def _shown(self) -> str:
        return mask_cpr(str.__str__(self))

    @property
    def raw(self) -> str:
        return str.__str__(self)

    def __str__(self) -> str:
        return self._shown()

    def __repr__(self) -> str:
        return repr(self._shown())

    def __format__(self, spec: str) -> str:
        return format(self._shown(), spec)

    def _repr_html_(self) -> str:
        import html

        return html.escape(self._shown())

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str.__str__(self),))


class RedactedStr(CprStr):
    """A file name or free-text value shown with secrets and every run of ten digits masked
    (:func:`toolkit.core.redact.redact_file_name`: ``3201901234.jpg`` → ``320190-****.jpg``)."""

    __slots__ = ()

    def _shown(self) -> str:
        return redact(str.__str__(self), file_name=True)


def _is_na(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    if isinstance(value, float) and value != value:
        return True
    try:
        return bool(pd.isna(value)) if not isinstance(value, (str, bytes)) and np.ndim(value) == 0 else False
    except (TypeError, ValueError):
        return False


class _MaskedDtype(ExtensionDtype):
    type = str
    kind = "O"
    na_value = pd.NA
    _array: type["_MaskedArray"]

    @classmethod
    def construct_array_type(cls) -> type["_MaskedArray"]:
        return cls._array

    @classmethod
    def construct_from_string(cls, string: str) -> "_MaskedDtype":
        if not isinstance(string, str):
            raise TypeError(f"'construct_from_string' expects a string, got {type(string)}")
        if string == cls.name:
            return cls()
        raise TypeError(f"Cannot construct a '{cls.__name__}' from '{string}'")

    def __from_arrow__(self, array: Any) -> "_MaskedArray":
        import pyarrow as pa

        chunks = array.chunks if isinstance(array, pa.ChunkedArray) else [array]
        values: list[Any] = []
        for chunk in chunks:
            values.extend(chunk.to_pylist())
        return self.construct_array_type()._from_sequence(values, dtype=self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def _get_common_dtype(self, dtypes: list[Any]) -> Any:
        # concat/merge with a plain text column (a CSV the analyst read) keeps the mask: the common dtype
        # of masked and plain text is the masked dtype (redacted text wins over cpr: it masks CPRs in it)
        masked = [d for d in dtypes if isinstance(d, _MaskedDtype)]
        plain = [d for d in dtypes if not isinstance(d, _MaskedDtype)]
        if all(isinstance(d, pd.StringDtype) or d == np.dtype(object) for d in plain):
            return RedactedDtype() if any(isinstance(d, RedactedDtype) for d in masked) else type(self)()
        return np.dtype(object)


@register_extension_dtype
class CprDtype(_MaskedDtype):
    """Dtype ``"cpr"``: Danish CPR numbers as text, displayed ``010190-****``."""

    name = "cpr"


@register_extension_dtype
class RedactedDtype(_MaskedDtype):
    """Dtype ``"redacted"``: file names / free text displayed through ``redact(text, file_name=True)``
    (secrets and every run of exactly ten digits masked, ASCII or not)."""

    name = "redacted"


class _MaskedArray(ExtensionArray):
    """An object ndarray of plain ``str`` (or ``pd.NA``) whose display is masked."""

    _dtype_cls: type[_MaskedDtype]
    _scalar: type[CprStr]
    __array_priority__ = 1000

    def __init__(self, values: np.ndarray, copy: bool = False) -> None:
        values = np.asarray(values, dtype=object)
        if values.ndim != 1:
            raise ValueError("a masked array is one-dimensional")
        self._data = values.copy() if copy else values

    # -- construction ---------------------------------------------------------------------------------
    @classmethod
    def _coerce(cls, value: Any) -> Any:
        if _is_na(value):
            return pd.NA
        if isinstance(value, str):
            return str.__str__(value)
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        return str(value)

    @classmethod
    def _from_sequence(cls, scalars: Any, *, dtype: Any = None, copy: bool = False) -> "_MaskedArray":
        if isinstance(scalars, _MaskedArray):
            return cls(scalars._data, copy=copy)
        if isinstance(scalars, (pd.Series, pd.Index)):
            scalars = scalars.to_numpy(dtype=object, na_value=pd.NA) if isinstance(
                scalars.dtype, ExtensionDtype) else np.asarray(scalars, dtype=object)
        values = np.empty(len(scalars), dtype=object)
        for i, value in enumerate(scalars):
            values[i] = cls._coerce(value)
        return cls(values)

    @classmethod
    def _from_sequence_of_strings(cls, strings: Any, *, dtype: Any = None, copy: bool = False) -> "_MaskedArray":
        return cls._from_sequence(strings, dtype=dtype, copy=copy)

    @classmethod
    def _from_factorized(cls, values: np.ndarray, original: "_MaskedArray") -> "_MaskedArray":
        return cls._from_sequence(values)

    # -- the array protocol ---------------------------------------------------------------------------
    @property
    def dtype(self) -> _MaskedDtype:
        return self._dtype_cls()

    def __len__(self) -> int:
        return len(self._data)

    @property
    def nbytes(self) -> int:
        return int(self._data.nbytes)

    def _box(self, value: Any) -> Any:
        return pd.NA if value is pd.NA else self._scalar(value)

    def __getitem__(self, key: Any) -> Any:
        if is_integer(key):
            return self._box(self._data[key])
        if isinstance(key, tuple) and len(key) == 1:
            key = key[0]
        if key is Ellipsis:
            return type(self)(self._data)
        key = check_array_indexer(self, key) if not isinstance(key, slice) else key
        return type(self)(self._data[key])

    def __iter__(self) -> Any:
        for value in self._data:
            yield self._box(value)

    def __setitem__(self, key: Any, value: Any) -> None:
        if not isinstance(key, slice) and not is_integer(key):
            key = check_array_indexer(self, key)
        if isinstance(value, _MaskedArray):
            value = value._data
        elif is_list_like(value) and not isinstance(value, str):
            value = type(self)._from_sequence(value)._data
        else:
            value = self._coerce(value)
        self._data[key] = value

    def isna(self) -> np.ndarray:
        return pd.isna(self._data)

    def take(self, indices: Sequence[int], *, allow_fill: bool = False, fill_value: Any = None) -> "_MaskedArray":
        if allow_fill and _is_na(fill_value):
            fill_value = pd.NA
        elif allow_fill:
            fill_value = self._coerce(fill_value)
        return type(self)(take(self._data, indices, allow_fill=allow_fill, fill_value=fill_value))

    def copy(self) -> "_MaskedArray":
        return type(self)(self._data.copy())

    @classmethod
    def _concat_same_type(cls, to_concat: Sequence["_MaskedArray"]) -> "_MaskedArray":
        if not to_concat:
            return cls(np.array([], dtype=object))
        return cls(np.concatenate([a._data for a in to_concat]))

    def _values_for_factorize(self) -> tuple[np.ndarray, Any]:
        values = self._data.copy()
        values[self.isna()] = None
        return values, None

    def _values_for_argsort(self) -> np.ndarray:
        values = self._data.copy()
        values[self.isna()] = ""
        return values.astype(str)

    def _values_for_json(self) -> np.ndarray:
        return self.to_numpy(na_value=None)

    def unique(self) -> "_MaskedArray":
        seen: dict[Any, None] = {}
        for value in self._data:
            seen.setdefault(value, None)
        return type(self)(np.array(list(seen), dtype=object))

    def value_counts(self, dropna: bool = True) -> pd.Series:
        counts = pd.Series(self.to_numpy(na_value=None), dtype=object).value_counts(dropna=dropna)
        index = pd.Index(type(self)._from_sequence(list(counts.index)), name=counts.index.name)
        return pd.Series(counts.to_numpy(), index=index, name="count")

    # -- handing the raw values out -------------------------------------------------------------------
    def to_numpy(self, dtype: Any = None, copy: bool = False, na_value: Any = pd.api.extensions.no_default,
                 ) -> np.ndarray:
        values = self._data.copy()
        if na_value is not pd.api.extensions.no_default:
            values[self.isna()] = na_value
        if dtype is not None and np.dtype(dtype) != np.dtype(object):
            return values.astype(dtype)
        return values

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.to_numpy(dtype=dtype)

    def tolist(self) -> list[Any]:
        return list(self._data)

    def astype(self, dtype: Any, copy: bool = True) -> Any:
        dtype = pd.api.types.pandas_dtype(dtype)
        if isinstance(dtype, type(self.dtype)):
            return self.copy() if copy else self
        if isinstance(dtype, _MaskedDtype):
            return dtype.construct_array_type()(self._data, copy=True)
        if dtype == np.dtype(object):
            # the object fallback pandas uses for .T, df.values and mixed rows: scalars that display masked
            return np.array([self._box(v) for v in self._data] + [None], dtype=object)[:-1]
        if isinstance(dtype, pd.StringDtype):
            return dtype.construct_array_type()._from_sequence(self.to_numpy(na_value=dtype.na_value), dtype=dtype)
        if isinstance(dtype, ExtensionDtype):
            return dtype.construct_array_type()._from_sequence(self.to_numpy(na_value=pd.NA), dtype=dtype)
        if dtype.kind in "US":
            return self.to_numpy(na_value="<NA>").astype(dtype)
        return self.to_numpy(na_value=np.nan).astype(dtype, copy=False)

    def __arrow_array__(self, type: Any = None) -> Any:
        import pyarrow as pa

        return pa.array(self.to_numpy(na_value=None), type=type or pa.string(), from_pandas=True)

    # -- display --------------------------------------------------------------------------------------
    def _shown(self, value: Any) -> str:
        return self._scalar(raw(value))._shown()

    def _formatter(self, boxed: bool = False) -> Callable[[Any], str | None]:
        def show(value: Any) -> str:
            if _is_na(value):
                return str(pd.NA)
            text = self._shown(value)
            return text if boxed else repr(text)

        return show

    # -- comparisons ----------------------------------------------------------------------------------
    def _cmp(self, other: Any, op: Callable[[Any, Any], Any]) -> Any:
        if isinstance(other, (pd.Series, pd.Index, pd.DataFrame)):
            return NotImplemented
        mask = self.isna()
        if isinstance(other, _MaskedArray):
            other_values: Any = other._data
            mask = mask | other.isna()
        elif is_list_like(other) and not isinstance(other, str):
            other_values = np.array([raw(v) if not _is_na(v) else pd.NA for v in other] + [None], dtype=object)[:-1]
            if len(other_values) != len(self):
                raise ValueError("Lengths must match to compare")
            mask = mask | np.array([v is pd.NA for v in other_values], dtype=bool)
        elif _is_na(other):
            return pd.arrays.BooleanArray(np.zeros(len(self), dtype=bool), np.ones(len(self), dtype=bool))
        else:
            other_values = np.full(len(self), raw(other), dtype=object)
        result = np.zeros(len(self), dtype=bool)
        valid = ~mask
        if valid.any():
            result[valid] = [bool(op(a, b)) for a, b in zip(self._data[valid], other_values[valid])]
        return pd.arrays.BooleanArray(result, mask)

    def __eq__(self, other: Any) -> Any:  # type: ignore[override]
        return self._cmp(other, operator.eq)

    def __ne__(self, other: Any) -> Any:  # type: ignore[override]
        return self._cmp(other, operator.ne)

    def __lt__(self, other: Any) -> Any:
        return self._cmp(other, operator.lt)

    def __le__(self, other: Any) -> Any:
        return self._cmp(other, operator.le)

    def __gt__(self, other: Any) -> Any:
        return self._cmp(other, operator.gt)

    def __ge__(self, other: Any) -> Any:
        return self._cmp(other, operator.ge)

    def __repr__(self) -> str:
        shown = ", ".join(self._formatter()(v) for v in self._data[:10])
        more = ", ..." if len(self) > 10 else ""
        return f"<{type(self).__name__}>\n[{shown}{more}]\nLength: {len(self)}, dtype: {self.dtype.name}"


class CprArray(_MaskedArray):
    """The array behind dtype ``"cpr"``; integers are read as CPRs that lost their leading zero."""

    _dtype_cls = CprDtype
    _scalar = CprStr

    @classmethod
    def _coerce(cls, value: Any) -> Any:
        if isinstance(value, (bool, np.bool_)):
            return str(value)
        if isinstance(value, (int, np.integer)):
            number = int(value)
            return str(number).zfill(10) if 0 <= number < 10**10 else str(number)
        if isinstance(value, (float, np.floating)) and value == value and float(value).is_integer() \
                and 0 <= value < 10**10:
            return str(int(value)).zfill(10)
        return super()._coerce(value)


class RedactedArray(_MaskedArray):
    """The array behind dtype ``"redacted"``."""

    _dtype_cls = RedactedDtype
    _scalar = RedactedStr


CprDtype._array = CprArray
RedactedDtype._array = RedactedArray


def is_masked_dtype(dtype: Any) -> bool:
    """Whether values of this dtype are shown masked by pandas."""
    return isinstance(dtype, _MaskedDtype)
