"""Pandas extension dtypes for personal data: CPR numbers (``"cpr"``) and free text that may hold one
(``"redacted"``: file names like ``0101901234.jpg``, signed links).

**A CPR value is the number for code and masked for eyes.** Every conversion to text that code uses gives
the ten digits; only what a person looks at (``repr``, the frame's and series' display in text and HTML, logs,
errors) shows ``010190-****``. Masking data that code receives would be data loss (two students born the
same day would get the same file name), so nothing here masks ``str()``.

    >>> import pandas as pd
    >>> from toolkit.core.cpr_dtype import CprDtype
    >>> s = pd.Series(["0101901234"], dtype="cpr")
    >>> v = s.iloc[0]
    >>> str(v), f"{v}.jpg", repr(v), str(s.dtype)
    ('0101901234', '0101901234.jpg', "'010190-****'", 'cpr')
    >>> print(s.to_string())
    0    010190-****

**The number, for code** (``tests/test_cpr_idioms.py``): a scalar (``df["cpr"].iloc[0]``, iteration,
``row.cpr`` of ``itertuples``, ``row["cpr"]`` of ``iterrows``, a cell of ``.T`` or ``to_dict``) is a
:class:`CprStr`, a ``str`` equal to, hashing as and *converting to* the number: ``str(v)``, f-strings
(``out / f"{row.cpr}.jpg"``), ``"%s" % v``, ``"{}".format(v)``, ``v + ".jpg"``, ``Path(...) / v``,
``urlencode``, an HTTP query (``params={"cpr": v}``), ``json.dumps``, ``csv``, ``sqlite3`` parameters. A
column gives the digits to ``.tolist()``, ``.to_numpy()``, ``astype(str)``, ``apply(str)``,
``map(lambda c: f"{c}.jpg")``, ``to_csv``, ``to_json``, ``to_excel``, ``to_sql``, ``to_parquet``,
comparisons (``df["cpr"] == "0101901234"``, ``isin``) and merge keys. The ``.str`` accessor
(``df.cpr.str.startswith("01")``, ``.str[:6]``, ``.str.len()``) and ``df.cpr + ".jpg"`` / ``".jpg" +
df.cpr`` work on the values as pandas' own ``string`` dtype and give **plain** results (``string``,
``boolean``, ``Int64``): text derived from a CPR is no longer a CPR column and is shown as it is. The same
holds for a ``redacted`` column (``folder / row.file``; Mediaflow's ``download_url`` gives the real link).

**Masked, for eyes**: ``repr(v)`` (so the notebook, ``print([v])``, ``print(df.to_dict())``), ``v.masked``,
``v._repr_html_()``; ``repr``/``print``/``to_string`` and the notebook's HTML of a frame or series — the
column's dtype carries the mask through ``merge`` (a CPR frame on the left), ``join``, ``pd.concat`` with a
plain text frame (either order: the common dtype of ``cpr`` and plain text is ``cpr``), ``rename``,
``set_index`` (index and MultiIndex), ``groupby`` (result index), ``value_counts``, ``unique``,
``pivot_table``, ``melt``, ``pd.DataFrame(df)``, ``head``, filtering, ``.loc``/``.iloc``, ``sort_values``,
``drop_duplicates``, ``fillna``, identity ``map``, pickling, and Parquet (below). Log records: a ``CprStr``
argument (``log.info("saved %s", v)``) is masked by :class:`toolkit.core.redact.RedactingFilter`, and
``redact(v)`` masks it whole.

**Where pandas drops the dtype** (a row ``df.iloc[0]`` or ``iterrows()``, ``.T`` of a mixed frame,
``astype(object)``, ``describe()``, a Series named by a CPR such as ``df.set_index("cpr").loc[c]``, the
``Styler``): the values are :class:`CprStr` scalars, which pandas draws with ``str()``. So that these stay
masked on display without changing what code receives, this module hooks two display functions of pandas
on import (:func:`install_display_hooks`): ``pandas.io.formats.printing.pprint_thing`` shows a ``CprStr``
masked when it is called for a table or a repr (with ``escape_chars``; pandas' HDF query values call it
without and are untouched), and the Styler's default formatter and HTML escaping show it masked.

**Parquet** (:func:`install_arrow_hooks`): pyarrow stores ``str(dtype)`` in the file's pandas metadata and
calls ``pandas_dtype("cpr")`` when reading, which fails where the toolkit is not imported (``TypeError: data
type 'cpr' not understood``). The toolkit therefore writes a masked column as a plain Parquet string column
with ``numpy_type: object`` and a marker ``{"toolkit_dtype": "cpr"}`` in the column's metadata: pandas
without the toolkit reads text (leading zeros kept), DuckDB reads ``VARCHAR``, and pandas after
``import toolkit`` reads the column (or index level) back as ``cpr``/``redacted``, masked. Files written
before this change (``numpy_type: cpr``) still read with the toolkit; read and write them again for readers
without it.

**Cannot keep the mask** (pandas or the caller builds plain text from the values — shown as it is):

* ``print(v)`` of a single value: ``print`` is ``str()``, the number (show it with ``v`` in the notebook,
  ``repr(v)`` or ``v.masked``; label pictures with ``toolkit.uddata.cpr.mask(v)``);
* anything built from ``str()``/f-strings, ``tolist()``/``to_numpy()``/``astype(str)``, ``.str`` methods or
  ``+`` (plain text by definition);
* ``plain.merge(students, on="cpr")`` with the *plain* frame on the left: pandas keeps the left's plain
  strings (cast first: ``plain.astype({"cpr": "cpr"})``);
* rebuilding from values: ``pd.Series(list_of_values)``, ``pd.DataFrame([row])`` infer pandas' own ``str``
  dtype (cast back with ``astype("cpr")``);
* a formatter of your own (``to_string(formatters=…)``, ``Styler.format(func)``) receives the value and
  shows what it returns;
* ``to_markdown`` needs ``tabulate`` (not installed here, unchecked); a frame whose *column labels* are
  CPRs comes back from Parquet with plain labels.
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
    """A CPR value taken out of a ``cpr`` column: a ``str`` that *is* the number for code and shows masked for
    eyes. ``str()``, ``format()`` (f-strings, ``"{}".format``), ``%s``, concatenation, ``json``, ``csv``,
    ``sqlite3``, ``urlencode``, ``Path(...) / f"{v}.jpg"`` all see the ten digits; ``repr()`` (the notebook,
    ``print([v])``, ``print({"cpr": v})``), ``_repr_html_`` and pandas' display show ``010190-****``.
    ``v.masked`` is the masked text (a label for a picture), ``v.raw`` the plain ``str``."""

    __slots__ = ()

    def _shown(self) -> str:
        return mask_cpr(str.__str__(self))

    @property
    def raw(self) -> str:
        """The plain ``str`` (the same as ``str(v)``)."""
        return str.__str__(self)

    @property
    def masked(self) -> str:
        """The text for eyes: ``010190-****`` (a file name or free text: its CPRs and secrets masked)."""
        return self._shown()

    def __str__(self) -> str:
        return str.__str__(self)  # a plain str of the same text: the number, for code

    def __format__(self, spec: str) -> str:
        return format(str.__str__(self), spec)

    def __repr__(self) -> str:
        return repr(self._shown())

    def _repr_html_(self) -> str:
        import html

        return html.escape(self._shown())

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str.__str__(self),))


class RedactedStr(CprStr):
    """A file name or free-text value (a signed link): the text itself for code (``folder / v``,
    ``open(v)``, ``f"{v}"``), shown for eyes with secrets and every run of ten digits masked
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

    # -- text operations: plain results ------------------------------------------------------------------
    def _plain(self) -> ExtensionArray:
        """The values as pandas' own ``string`` array: what ``.str`` methods and ``+`` work on (their results
        are plain text, bools or ints — no longer masked)."""
        return pd.array(self.to_numpy(na_value=pd.NA), dtype="string")

    def _concat(self, other: Any, reverse: bool) -> Any:
        if isinstance(other, (pd.Series, pd.Index, pd.DataFrame)):
            return NotImplemented  # pandas unpacks them and asks again with the array
        if isinstance(other, _MaskedArray):
            other = other._plain()
        elif isinstance(other, str):
            other = str.__str__(other)
        plain = self._plain()
        return other + plain if reverse else plain + other

    def __add__(self, other: Any) -> Any:
        return self._concat(other, reverse=False)

    def __radd__(self, other: Any) -> Any:
        return self._concat(other, reverse=True)

    def __repr__(self) -> str:
        shown = ", ".join(self._formatter()(v) for v in self._data[:10])
        more = ", ..." if len(self) > 10 else ""
        return f"<{type(self).__name__}>\n[{shown}{more}]\nLength: {len(self)}, dtype: {self.dtype.name}"


def _delegate_str(name: str) -> Callable[..., Any]:
    def method(self: _MaskedArray, *args: Any, **kwargs: Any) -> Any:
        return getattr(self._plain(), name)(*args, **kwargs)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"``Series.str`` on a masked column: pandas' ``string`` array's {name}, a plain result."
    return method


# ``df.cpr.str.startswith("01")``, ``.str[:6]``, ``.str.len()``: pandas' .str accessor calls the array's
# ``_str_*`` methods; these are those of pandas' own string arrays, run on the values as plain text
for _name in sorted({n for cls in (pd.arrays.StringArray, getattr(pd.arrays, "ArrowStringArray", None))
                     if cls is not None for n in dir(cls) if n.startswith("_str_")}):
    setattr(_MaskedArray, _name, _delegate_str(_name))


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


# -- the mask where a value leaves its column ---------------------------------------------------------------
# A row ``df.iloc[0]``, ``.T`` of a mixed frame, ``describe()``, ``astype(object)`` and a Series named by a
# CPR (``df.set_index("cpr").loc[c]``) hold CprStr scalars in object dtype, and a Styler renders the scalars
# themselves: pandas shows those through ``printing.pprint_thing`` and the Styler's default formatter, which
# call ``str()`` — the number, since ``str()`` is for code. These hooks make pandas' *display* of a CprStr
# its masked text; what code receives (the values, ``str()``, ``format()``, user formatters) is unchanged.
_HOOKED = "_toolkit_cpr_mask"


def _hook(module: Any, name: str, make: Callable[[Callable[..., Any]], Callable[..., Any]]) -> bool:
    """Replace ``module.name`` by ``make(original)`` once (a second import of this module does nothing)."""
    original = getattr(module, name, None)
    if original is None or not callable(original):
        return False
    if getattr(original, _HOOKED, False):
        return True
    wrapper = make(original)
    import functools

    functools.update_wrapper(wrapper, original)
    setattr(wrapper, _HOOKED, True)
    setattr(module, name, wrapper)
    return True


def _display_pprint(original: Callable[..., Any]) -> Callable[..., Any]:
    def pprint_thing(thing: Any, *args: Any, **kwargs: Any) -> Any:
        # pandas' table and repr formatting pass escape_chars (tabs and newlines are escaped for display);
        # pprint_thing_encoded (HDF query values: data) passes none and gets the value unchanged
        escape_chars = kwargs.get("escape_chars", args[1] if len(args) > 1 else None)
        if escape_chars is not None and isinstance(thing, CprStr):
            thing = thing.masked
        return original(thing, *args, **kwargs)

    return pprint_thing


def _display_styler(original: Callable[..., Any]) -> Callable[..., Any]:
    def styler_value(x: Any, *args: Any, **kwargs: Any) -> Any:
        return original(x.masked if isinstance(x, CprStr) else x, *args, **kwargs)

    return styler_value


def install_display_hooks() -> dict[str, bool]:
    """Mask CprStr scalars in pandas' display (object columns, rows, Series names, the Styler); done on import.
    Returns which hooks are in place (a pandas without one of these functions keeps its own display)."""
    from pandas.io.formats import printing

    done = {"pprint_thing": _hook(printing, "pprint_thing", _display_pprint)}
    try:
        import jinja2  # noqa: F401  (the Styler needs it; without it there is no Styler to hook)
    except ImportError:
        return done
    from pandas.io.formats import style_render

    done["styler"] = _hook(style_render, "_default_formatter", _display_styler) \
        and _hook(style_render, "_str_escape", _display_styler)
    return done


# -- Parquet: a file any reader reads, masked again with the toolkit --------------------------------------
# pyarrow records a column's dtype as ``str(dtype)`` in the file's pandas metadata and rebuilds it with
# ``pandas_dtype("cpr")``, which fails (TypeError: data type 'cpr' not understood) wherever the toolkit is not
# imported. So the file records a masked column as plain text (``numpy_type: object``, the values a Parquet
# string column: any reader — pandas without the toolkit, DuckDB, Spark — reads the digits, zeros kept) with
# the dtype's name in the column's own metadata (``{"toolkit_dtype": "cpr"}``), and reading with the toolkit
# imported turns such columns (and index levels) back into the masked dtype.
ARROW_MARK = "toolkit_dtype"


def _arrow_column_metadata(original: Callable[..., Any]) -> Callable[..., Any]:
    def get_column_metadata(column: Any, *args: Any, **kwargs: Any) -> Any:
        meta = original(column, *args, **kwargs)
        dtype = getattr(column, "dtype", None)
        if is_masked_dtype(dtype) and isinstance(meta, dict):
            meta = dict(meta, numpy_type="object", metadata={ARROW_MARK: dtype.name})
        return meta

    return get_column_metadata


def _masked_dtype_of(meta: Any) -> "_MaskedDtype | None":
    """The masked dtype a column's pandas metadata names (ours, or ``numpy_type: cpr`` of older files)."""
    if not isinstance(meta, dict):
        return None
    extra = meta.get("metadata")
    name = extra.get(ARROW_MARK) if isinstance(extra, dict) else None
    name = name or meta.get("numpy_type")
    return {"cpr": CprDtype, "redacted": RedactedDtype}.get(name)() if name in ("cpr", "redacted") else None


def _restore_masked(df: pd.DataFrame, table: Any) -> pd.DataFrame:
    pandas_meta = table.schema.pandas_metadata or {}
    marked = {m.get("field_name", m.get("name")): _masked_dtype_of(m) for m in pandas_meta.get("columns", [])}
    marked = {k: v for k, v in marked.items() if v is not None}
    if not marked:
        return df
    index_fields = [d for d in pandas_meta.get("index_columns", []) if isinstance(d, str)]
    data_fields = [f for f in table.column_names if f not in index_fields]
    if len(data_fields) == df.shape[1]:
        for position, field in enumerate(data_fields):
            if field in marked and df.dtypes.iloc[position] != marked[field]:
                df.isetitem(position, df.iloc[:, position].astype(marked[field]))
    levels = [f for f in index_fields if f in table.column_names]
    if any(f in marked for f in levels) and df.index.nlevels == len(levels):
        arrays = [df.index.get_level_values(i) for i in range(len(levels))]
        arrays = [a.astype(marked[f]) if f in marked else a for a, f in zip(arrays, levels)]
        df.index = arrays[0].rename(df.index.name) if len(arrays) == 1 else \
            pd.MultiIndex.from_arrays(arrays, names=df.index.names)
    return df


def _arrow_to_dataframe(original: Callable[..., Any]) -> Callable[..., Any]:
    def table_to_dataframe(options: Any, table: Any, *args: Any, **kwargs: Any) -> Any:
        df = original(options, table, *args, **kwargs)
        ignore = kwargs.get("ignore_metadata", args[1] if len(args) > 1 else False)
        return df if ignore or not isinstance(df, pd.DataFrame) else _restore_masked(df, table)

    return table_to_dataframe


def install_arrow_hooks() -> dict[str, bool]:
    """Write masked columns to Arrow/Parquet as plain text plus a marker, read the marker back as the dtype
    (see above); done on import when pyarrow is installed. Returns which hooks are in place."""
    try:
        from pyarrow import pandas_compat
    except ImportError:
        return {}
    return {"write": _hook(pandas_compat, "get_column_metadata", _arrow_column_metadata),
            "read": _hook(pandas_compat, "table_to_dataframe", _arrow_to_dataframe)}


install_display_hooks()
install_arrow_hooks()
