"""Parse Boknett's object report and error XML: fast, and safe against XML attacks. No network here.

* :func:`parse_objects` turns ``<OBJECTS><OBJECT>…</OBJECT></OBJECTS>`` into a DataFrame with the columns
  of :data:`OBJECT_SCHEMA`, every value text exactly as served (leading zeros kept, the ``REFERENCE`` link
  untouched in ``url``, surrounding whitespace stripped); an element that is missing, empty (``<ISBN13/>``) or blank is ``<NA>``
  alike (Bokbasen's SDK names such an object's file by its EAN); an empty ``<OBJECTS/>`` keeps its columns.
* Speed: lxml's ``iterparse`` filtered on ``OBJECT``, each element cleared once read, values collected in
  column lists (``benchmarks/boknett_report.py`` compares it with ``pandas.read_xml``).
* Safety: lxml never expands entities, never loads a DTD, never touches the network, and refuses huge
  trees; a document that declares entities (billion laughs, an external entity naming a local file) or
  names an external DTD is refused with :class:`~toolkit.core.errors.ValidationError` before any value is
  read. Malformed XML is a ``ValidationError`` naming Boknett.
"""

from __future__ import annotations

import io
from typing import Any

from ..core.errors import ValidationError
from ..core.frames import frame

__all__ = ["parse_columns", "OBJECT_SCHEMA", "TYPE_NAMES", "FIELDS", "parse_objects", "parse_errors", "ENTITY_MESSAGE"]

OBJECT_SCHEMA = {
    "isbn13": "string", "ean": "string", "fssn": "string", "vareeier_kode": "string",
    "type": "string", "type_name": "string",
    # the vocabulary (docs/vocabulary.md): url is the report's REFERENCE (the short-lived download link)
    "url": "string",
}
TYPE_NAMES = {"ly": "audio file", "ol": "small cover", "os": "large cover", "org": "original cover"}
#: element name in the report → column
FIELDS = {"ISBN13": "isbn13", "EAN": "ean", "FSSN": "fssn", "VAREEIER_KODE": "vareeier_kode", "TYPE": "type",
          "REFERENCE": "url"}
ENTITY_MESSAGE = "the report contained entity declarations and was refused"
_EXTERNAL_DTD_MESSAGE = "the report referred to an external DTD and was refused"
_HINT = ("Boknett never sends these; the answer did not come from the real service or was tampered with. "
         "Check the base URL, then pull again.")
_BOMS = ((b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe", "utf-16-le"),
         (b"\xfe\xff", "utf-16-be"))


def _refuse_entities(data: bytes) -> None:
    """Refuse entity declarations by a byte scan (before lxml reads anything)."""
    text: Any = data
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            text = data.decode(encoding, errors="replace")
            break
    needle = "<!ENTITY" if isinstance(text, str) else b"<!ENTITY"
    if needle in text:
        raise ValidationError(ENTITY_MESSAGE, service="boknett", hint=_HINT)


def _check_docinfo(tree: Any) -> None:
    """Second line of defence (any encoding): lxml's view of the DOCTYPE."""
    docinfo = tree.docinfo
    dtd = docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise ValidationError(ENTITY_MESSAGE, service="boknett", hint=_HINT)
    if docinfo.system_url or docinfo.public_id:
        raise ValidationError(_EXTERNAL_DTD_MESSAGE, service="boknett", hint=_HINT)


def _iterparse(data: bytes, tag: str) -> Any:
    from lxml import etree

    return etree.iterparse(io.BytesIO(data), events=("end",), tag=tag, resolve_entities=False, no_network=True,
                           load_dtd=False, huge_tree=False, dtd_validation=False, remove_blank_text=True, remove_comments=True,
                           remove_pis=True)


def _malformed(exc: Exception, what: str) -> ValidationError:
    if "amplification" in str(exc):  # libxml2's own guard against entity bombs
        return ValidationError(ENTITY_MESSAGE, service="boknett", hint=_HINT)
    detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return ValidationError(f"the {what} from Boknett is not well-formed XML ({detail})", service="boknett",
                           hint="Pull it again; if it keeps failing, contact Bokbasen's support.")


def _local(tag: Any) -> str:
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[1] if tag.startswith("{") else tag


def parse_objects(data: bytes) -> Any:
    """The object report as a DataFrame (columns :data:`OBJECT_SCHEMA`, all text)."""
    import pandas as pd

    return frame(pd.DataFrame(parse_columns(data)), OBJECT_SCHEMA)


def parse_columns(data: bytes) -> dict[str, list[Any]]:
    """The object report as plain column lists (``str`` or ``None``), in :data:`OBJECT_SCHEMA` order — what
    :func:`parse_objects` builds its frame from, and what a streamed pull writes without a DataFrame."""
    from lxml import etree

    if isinstance(data, str):
        data = data.encode("utf-8")
    _refuse_entities(data)
    columns: dict[str, list[Any]] = {name: [] for name in FIELDS.values()}
    lists = [columns[name] for name in FIELDS.values()]
    appends = [values.append for values in lists]
    slot = {tag: k for k, tag in enumerate(FIELDS)}
    expected = list(FIELDS)
    width = len(lists)
    checked = False
    context = _iterparse(data, "{*}OBJECT")
    try:
        for _, element in context:
            if not checked:
                _check_docinfo(element.getroottree())
                checked = True
            kids = element[:]
            if [kid.tag for kid in kids] == expected:
                # the usual shape: the six elements in the documented order
                for append, kid in zip(appends, kids):
                    text = kid.text
                    append((text.strip() or None) if text is not None else None)
            else:
                row: list[Any] = [None] * width
                for kid in kids:
                    k = slot.get(_local(kid.tag))
                    if k is not None:
                        text = kid.text
                        row[k] = (text.strip() or None) if text is not None else None
                for append, value in zip(appends, row):
                    append(value)
            element.clear(keep_tail=False)
            parent = element.getparent()
            if parent is not None:
                while element.getprevious() is not None:
                    del parent[0]
        root = context.root
    except etree.XMLSyntaxError as exc:
        raise _malformed(exc, "report") from None
    if root is None:
        raise ValidationError("the report from Boknett is empty (no XML document)", service="boknett",
                              hint="Pull it again; if it keeps failing, contact Bokbasen's support.")
    _check_docinfo(root.getroottree())
    if _local(root.tag) != "OBJECTS":
        raise ValidationError(f"the answer from Boknett is not an object report (its root element is "
                              f"<{_local(root.tag)[:40]}>, not <OBJECTS>)", service="boknett",
                              hint="Check the base URL and the request; pull again.")
    names = TYPE_NAMES
    columns["type_name"] = [names.get(t) if t is not None else None for t in columns["type"]]
    return {name: columns[name] for name in OBJECT_SCHEMA}


def parse_errors(data: bytes) -> list[tuple[str, str]]:
    """``[(code, message), …]`` of Boknett's ``<errors><error><code/><message/></error></errors>``."""
    from lxml import etree

    if isinstance(data, str):
        data = data.encode("utf-8")
    _refuse_entities(data)
    found: list[tuple[str, str]] = []
    context = _iterparse(data, "{*}error")
    try:
        for _, element in context:
            code = message = ""
            for child in element:
                name = _local(child.tag)
                if name == "code":
                    code = (child.text or "").strip()
                elif name == "message":
                    message = (child.text or "").strip()
            found.append((code, message))
            element.clear(keep_tail=False)
        root = context.root
    except etree.XMLSyntaxError as exc:
        raise _malformed(exc, "error answer") from None
    if root is not None:
        _check_docinfo(root.getroottree())
    return found
