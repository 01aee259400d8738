"""Contact sheets of many images, made with Pillow, and a paged notebook widget that shows them.

    sheet = toolkit.contact_sheet(paths, labels=cprs)          # one PIL image of all of them
    toolkit.widgets.image_grid(paths, labels=cprs)             # paged: Prev / Next, one image widget

Images may be ``PIL.Image.Image`` objects, file paths (``str``/``Path``) or ``bytes``; ``None`` is a person
without a photo and becomes a "no photo" tile. A file that cannot be read becomes a tile with a short
message; it never stops the sheet.

What makes it fast and small:

* JPEG files are decoded at reduced size (``Image.draft``: the decoder skips detail a thumbnail cannot
  show), several at a time in a thread pool (Pillow decodes without holding the GIL);
* the EXIF orientation is applied, so portraits stand up;
* each page is encoded as one JPEG whose quality is lowered until it fits a byte budget (300 KB by
  default), so a notebook with a grid in it stays small.

Labels are drawn into the picture with the one label font (:func:`label_font`: DejaVu Sans, shipped with
the toolkit, so ``möte-konferens-04`` and ``fika-skärgård-15`` keep their letters); anything that looks like
a CPR number or a secret is masked first (``toolkit.core.redact.redact``); labels made from file names mask
every run of ten digits (``toolkit.core.redact.redact_file_name``: ``3201901234.jpg`` shows
``320190-****.jpg``). Where a label appears in HTML (the grid's status line) it is escaped.
No image is ever shown by URL: the pixels travel as bytes, so no token can leak through an address.
"""

from __future__ import annotations

import functools
import html
import io
import math
import os
import unicodedata
import warnings
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Iterator, Sequence, Union

import ipywidgets as w
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError, features

from ..core.errors import ValidationError
from ..core.redact import get_logger, redact, redact_file_name

__all__ = ["contact_sheet", "contact_sheets", "image_grid", "ImageGrid", "ContactSheet", "SheetPages",
           "encode_jpeg", "load_thumbnail", "label_font", "DEFAULT_MAX_BYTES", "LABEL_FONT"]

log = get_logger("toolkit.widgets.images")

ImageSource = Union[Image.Image, str, os.PathLike, bytes, bytearray, memoryview, None]

DEFAULT_MAX_BYTES = 300_000
#: JPEG qualities tried in turn until a page fits its byte budget
QUALITIES = (85, 75, 65, 55, 45, 35, 25)

_BACKGROUND = (255, 255, 255)
_TILE_BACKGROUND = (236, 236, 236)
_PLACEHOLDER_BACKGROUND = (250, 228, 214)
_TEXT = (40, 40, 40)
_PAD = 4
NO_PHOTO = "no photo"


# -- one tile ---------------------------------------------------------------------------------------------
@dataclass
class Tile:
    """A thumbnail (or ``None``) and the short message shown instead when there is no picture."""

    image: Image.Image | None
    message: str = ""


def _describe_error(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, IsADirectoryError):
        return "a folder, not a file"
    if isinstance(exc, PermissionError):
        return "no permission to read"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image"
    if isinstance(exc, Image.DecompressionBombError):
        return "image too large"
    return "could not decode"


def _finish(img: Image.Image, thumb: int) -> Image.Image:
    """Orientation, RGB and thumbnail size, for an image already drafted (or small enough)."""
    img = ImageOps.exif_transpose(img)  # a new image; loads the (drafted) pixels
    if img.mode != "RGB":
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            flat = Image.new("RGB", rgba.size, _TILE_BACKGROUND)
            flat.paste(rgba, mask=rgba.getchannel("A"))
            img = flat
        else:
            img = img.convert("RGB")
    img.thumbnail((thumb, thumb), Image.Resampling.BICUBIC, reducing_gap=2.0)
    return img


def load_thumbnail(source: ImageSource, thumb: int = 160) -> Tile:
    """One source as a thumbnail at most ``thumb`` pixels wide and high, upright, in RGB.

    Files and bytes are opened here and, when they are JPEG, decoded at reduced size. An image the
    caller passes in is left untouched (it is copied). Failures become a :class:`Tile` with a message.
    """
    if source is None:
        return Tile(None, NO_PHOTO)
    try:
        if isinstance(source, Image.Image):
            return Tile(_finish(source, thumb))
        if isinstance(source, (bytes, bytearray, memoryview)):
            if not len(source):
                return Tile(None, "empty file")
            stream: Any = io.BytesIO(bytes(source))
        elif isinstance(source, (str, os.PathLike)):
            text = os.fspath(source)
            if isinstance(text, str) and text.lower().startswith(("http://", "https://")):
                return Tile(None, "a URL: download it first")
            stream = text
        else:
            return Tile(None, f"unsupported: {type(source).__name__}")
        with Image.open(stream) as img:
            if img.format == "JPEG":
                # decode at 1/2, 1/4 or 1/8 scale: still at least twice the thumbnail (for a clean resize)
                img.draft("RGB", (thumb * 2, thumb * 2))
            return Tile(_finish(img, thumb))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        # OSError covers missing files, truncated data and UnidentifiedImageError
        log.debug("image could not be read: %s (%s)", _describe_error(exc), type(exc).__name__)
        return Tile(None, _describe_error(exc))


# -- labels -------------------------------------------------------------------------------------------------
#: The font of every label: DejaVu Sans, shipped in ``toolkit/widgets/fonts/`` with its licence. It has
#: Latin-1, Latin Extended-A and -B (å ä ö æ ø, é ü, ő ł č š ž, the Sámi letters), Greek and Cyrillic. Pillow's
#: own default font (``ImageFont.load_default``) has ASCII only and draws ``möte`` as ``m□te``.
LABEL_FONT = "DejaVuSans.ttf"

NO_FREETYPE = ("Pillow here was built without FreeType, so the labels of contact sheets and image grids are "
               "drawn with Pillow's small bitmap font, which has Latin-1 only: letters beyond it (ő, ł, č, š, ž …) "
               "are drawn as '?'. Install a Pillow with FreeType (the PyPI wheels and "
               "conda-forge's pillow have it): ./run setup, or pip install --force-reinstall pillow.")
_warned: set[str] = set()


def _say_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        log.warning("%s", message)
        warnings.warn(message, RuntimeWarning, stacklevel=2)


@functools.lru_cache(maxsize=1)
def _font_data() -> bytes:
    return resources.files(__package__).joinpath("fonts").joinpath(LABEL_FONT).read_bytes()


def label_font(size: int = 12) -> Any:
    """The font labels are drawn with (the one place that picks it): :data:`LABEL_FONT` at ``size`` pixels.

    Without FreeType in Pillow (or with the font file missing from the installation) it falls back to
    Pillow's default font and says so once, as a warning and a log line: such labels lose letters
    (the bitmap font has Latin-1 only, Pillow's small FreeType font ASCII only). A new font object each
    call: FreeType faces are not shared between threads.
    """
    if not features.check("freetype2"):
        _say_once(NO_FREETYPE)
        # what load_default() gives without FreeType (named on its own from Pillow 10.4; 10.3 has load_default)
        return getattr(ImageFont, "load_default_imagefont", ImageFont.load_default)()
    try:
        return ImageFont.truetype(io.BytesIO(_font_data()), size)
    except OSError:
        _say_once(f"The label font {LABEL_FONT} is missing from this installation of the toolkit "
                  "(toolkit/widgets/fonts/), so labels are drawn with Pillow's default font and letters "
                  "outside ASCII (å, ä, ö, æ, ø …) show as boxes. Reinstall the toolkit: ./run setup.")
        return ImageFont.load_default(size=size)


def label_text(label: object) -> str:
    """The text drawn under a tile: CPR numbers and secrets masked, on one line, composed (NFC).

    A file name from macOS arrives decomposed (``o`` + combining diaeresis); composed, ``ö`` is one letter
    of the font, drawn and shortened as one.
    """
    if label is None:
        return ""
    text = unicodedata.normalize("NFC", str(label)) if isinstance(label, str) else label
    return " ".join(redact(text).split())  # a CPR value is masked whole, whatever its digits


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    more = "…" if isinstance(font, ImageFont.FreeTypeFont) else "..."  # the bitmap font has no "…"
    while text and draw.textlength(text + more, font=font) > width:
        text = text[:-1]
    return text + more


def _draw_label(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, font: Any, width: int) -> None:
    """Draw one (already masked) label; the single place text reaches the pixels."""
    if not isinstance(font, ImageFont.FreeTypeFont):  # the bitmap font (no FreeType): Latin-1 or it raises
        text = text.encode("latin-1", "replace").decode("latin-1")
    draw.text(xy, _fit(draw, text, font, width), fill=_TEXT, font=font)


def _default_label(source: ImageSource, index: int) -> str:
    """The label made from a file name (every run of ten digits masked, :func:`redact_file_name`), or ``#n``."""
    if isinstance(source, (str, os.PathLike)) and not str(source).lower().startswith(("http://", "https://")):
        return redact_file_name(Path(os.fspath(source)).name)
    return f"#{index + 1}"


# -- pages --------------------------------------------------------------------------------------------------
def encode_jpeg(img: Image.Image, max_bytes: int = DEFAULT_MAX_BYTES,
                qualities: Sequence[int] = QUALITIES) -> tuple[bytes, int]:
    """``img`` as JPEG of at most ``max_bytes``: quality lowered step by step, then the size if needed.

    Returns ``(jpeg_bytes, quality)``.
    """
    if max_bytes < 2_000:
        raise ValidationError(f"max_bytes={max_bytes} is too small for a picture; use at least 2000",
                              service="toolkit")
    rgb = img if img.mode == "RGB" else img.convert("RGB")
    while True:
        data, quality = b"", qualities[-1]
        for quality in qualities:
            buf = io.BytesIO()
            rgb.save(buf, "JPEG", quality=quality)
            data = buf.getvalue()
            if len(data) <= max_bytes:
                return data, quality
        # even the lowest quality is too big: shrink the picture and try again
        factor = max(0.3, min(0.9, math.sqrt(max_bytes / len(data)) * 0.95))
        size = (max(16, int(rgb.width * factor)), max(16, int(rgb.height * factor)))
        if size == rgb.size:
            return data, quality
        log.debug("page of %d bytes over the budget of %d at quality %d: shrinking to %s", len(data), max_bytes,
                  quality, size)
        rgb = rgb.resize(size, Image.Resampling.BILINEAR)


class ContactSheet(Image.Image):
    """A contact sheet: an ordinary ``PIL.Image.Image`` (RGB) that knows its byte budget.

    In a notebook it shows as the budgeted JPEG (``.jpeg``), never as a multi-megabyte PNG.
    """

    max_bytes: int = DEFAULT_MAX_BYTES
    page: int = 0
    pages: int = 1
    count: int = 0
    failed: list[tuple[str, str]]

    @classmethod
    def _wrap(cls, img: Image.Image, **attrs: Any) -> "ContactSheet":
        sheet = cls()
        sheet.im = img.im
        sheet._mode = img.mode
        sheet._size = img.size
        sheet.info = {}
        sheet.failed = []
        sheet._jpeg = None  # type: ignore[attr-defined]
        for key, value in attrs.items():
            setattr(sheet, key, value)
        return sheet

    @property
    def jpeg(self) -> bytes:
        """The sheet as JPEG bytes within ``max_bytes`` (computed once)."""
        cached = getattr(self, "_jpeg", None)
        if cached is None:
            cached, self.quality = encode_jpeg(self, self.max_bytes)
            self._jpeg = cached
        return cached

    def _repr_png_(self) -> None:  # a PNG of a sheet would be megabytes in the notebook
        return None

    def _repr_jpeg_(self) -> bytes:
        return self.jpeg


def _layout(count: int, columns: int, thumb: int, label_height: int) -> tuple[int, int, int, int]:
    columns = max(1, min(columns, count or 1))
    rows = max(1, math.ceil(count / columns))
    cell_w, cell_h = thumb + 2 * _PAD, thumb + label_height + 2 * _PAD
    return columns, rows, cell_w, cell_h


def _placeholder(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], message: str, font: Any) -> None:
    """A tile without a picture: grey for "no photo", light red for an image that could not be read."""
    x0, y0, x1, y1 = box
    draw.rectangle(box, fill=_TILE_BACKGROUND if message == NO_PHOTO else _PLACEHOLDER_BACKGROUND)
    words, lines, line = message.split(), [], ""
    for word in words:
        trial = f"{line} {word}".strip()
        if line and draw.textlength(trial, font=font) > (x1 - x0 - 8):
            lines.append(line)
            line = word
        else:
            line = trial
    if line:
        lines.append(line)
    y = (y0 + y1) // 2 - 8 * len(lines)
    for text in lines[:4]:
        _draw_label(draw, (x0 + 4, y), text, font, x1 - x0 - 8)
        y += 16


def _compose(tiles: Sequence[Tile], labels: Sequence[str], columns: int, thumb: int) -> Image.Image:
    font = label_font(12)
    label_height = 16 if any(labels) else 0
    columns, rows, cell_w, cell_h = _layout(len(tiles), columns, thumb, label_height)
    sheet = Image.new("RGB", (columns * cell_w, rows * cell_h), _BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for i, (tile, label) in enumerate(zip(tiles, labels)):
        x, y = (i % columns) * cell_w + _PAD, (i // columns) * cell_h + _PAD
        box = (x, y, x + thumb - 1, y + thumb - 1)
        if tile.image is None:
            _placeholder(draw, box, tile.message, font)
        else:
            draw.rectangle(box, fill=_TILE_BACKGROUND)
            img = tile.image
            sheet.paste(img, (x + (thumb - img.width) // 2, y + (thumb - img.height) // 2))
        if label:
            _draw_label(draw, (x, y + thumb + 2), label, font, thumb)
    return sheet


def _workers(workers: int | None, n: int) -> int:
    if workers is not None:
        return max(1, int(workers))
    return max(1, min(n, (os.cpu_count() or 1) * 2, 8))


class SheetPages:
    """The pages of a set of images, made on demand (a few kept): ``len()``, ``[i]``, ``jpeg(i)``."""

    def __init__(self, images: Sequence[ImageSource] | Any, labels: Sequence[object] | None = None, *,
                 columns: int = 6, thumb: int = 160, per_page: int | None = 36,
                 max_bytes: int = DEFAULT_MAX_BYTES, workers: int | None = None, cache: int = 4) -> None:
        items = list(images)
        if labels is None:
            texts = [label_text(_default_label(src, i)) for i, src in enumerate(items)]
        else:
            labels = list(labels)
            if len(labels) != len(items):
                raise ValidationError(f"{len(items)} images but {len(labels)} labels: give one label per image "
                                      "(or none)", service="toolkit")
            texts = [label_text(label) for label in labels]
        if columns < 1 or thumb < 16:
            raise ValidationError("columns must be at least 1 and thumb at least 16 pixels", service="toolkit")
        self.items = items
        self.labels = texts
        self.columns = int(columns)
        self.thumb = int(thumb)
        self.per_page = max(1, int(per_page)) if per_page else max(1, len(items))
        self.max_bytes = int(max_bytes)
        self.workers = workers
        self._cache: OrderedDict[int, ContactSheet] = OrderedDict()
        self._cache_size = max(1, cache)

    def __len__(self) -> int:
        return max(1, math.ceil(len(self.items) / self.per_page))

    def __iter__(self) -> Iterator[ContactSheet]:
        for i in range(len(self)):
            yield self[i]

    def bounds(self, page: int) -> tuple[int, int]:
        """Index range ``[start, stop)`` of the images on ``page``."""
        start = page * self.per_page
        return start, min(len(self.items), start + self.per_page)

    def __getitem__(self, page: int) -> ContactSheet:
        pages = len(self)
        if page < 0:
            page += pages
        if not 0 <= page < pages:
            raise IndexError(f"page {page} of {pages}")
        if page in self._cache:
            self._cache.move_to_end(page)
            return self._cache[page]
        sheet = self._render(page)
        self._cache[page] = sheet
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return sheet

    def jpeg(self, page: int) -> bytes:
        """Page ``page`` as JPEG bytes within the byte budget."""
        return self[page].jpeg

    def _render(self, page: int) -> ContactSheet:
        start, stop = self.bounds(page)
        sources = self.items[start:stop]
        n = _workers(self.workers, len(sources))
        if n > 1 and len(sources) > 1:
            with ThreadPoolExecutor(max_workers=n, thread_name_prefix="toolkit-thumbs") as pool:
                tiles = list(pool.map(lambda s: load_thumbnail(s, self.thumb), sources))
        else:
            tiles = [load_thumbnail(s, self.thumb) for s in sources]
        labels = self.labels[start:stop]
        img = _compose(tiles, labels, self.columns, self.thumb)
        failed = [(label or f"#{start + i + 1}", tile.message) for i, (tile, label) in enumerate(zip(tiles, labels))
                  if tile.image is None and tile.message != NO_PHOTO]
        return ContactSheet._wrap(img, max_bytes=self.max_bytes, page=page, pages=len(self),
                                  count=len(sources), failed=failed)

    def __repr__(self) -> str:
        return f"<SheetPages {len(self.items)} images, {len(self)} pages of {self.per_page}>"


def contact_sheets(images: Sequence[ImageSource] | Any, labels: Sequence[object] | None = None, *,
                   columns: int = 6, thumb: int = 160, per_page: int | None = 36,
                   max_bytes: int = DEFAULT_MAX_BYTES, workers: int | None = None) -> SheetPages:
    """Pages of contact sheets (``per_page`` images each), made when first asked for."""
    return SheetPages(images, labels, columns=columns, thumb=thumb, per_page=per_page, max_bytes=max_bytes,
                      workers=workers)


def contact_sheet(images: Sequence[ImageSource] | Any, labels: Sequence[object] | None = None, *,
                  columns: int = 6, thumb: int = 160, per_page: int | None = None, page: int = 0,
                  max_bytes: int = DEFAULT_MAX_BYTES, workers: int | None = None) -> ContactSheet:
    """One contact sheet as a ``PIL.Image.Image``: thumbnails in a grid with a label under each.

    ``images``: PIL images, file paths or bytes (``None`` = no photo). ``labels``: one per image
    (default: the file name, or ``#n``); CPR numbers in labels are masked. By default every image is
    on the one sheet; give ``per_page`` and ``page`` for one page of many (or use :func:`image_grid`).
    In a notebook the sheet shows as a JPEG of at most ``max_bytes``; ``sheet.jpeg`` gives those bytes.
    """
    return SheetPages(images, labels, columns=columns, thumb=thumb, per_page=per_page, max_bytes=max_bytes,
                      workers=workers, cache=1)[page]


# -- the widget ---------------------------------------------------------------------------------------------
class ImageGrid(w.VBox):
    """Paged contact sheets: one image widget, Prev / Next buttons and a status line.

    Paging replaces the JPEG bytes of the one ``ipywidgets.Image``; there is never a widget per image.
    ``grid.page`` is the current page (0-based), ``grid.pages`` the sheets (``grid.pages[i]`` a PIL image).
    """

    def __init__(self, images: Sequence[ImageSource] | Any, labels: Sequence[object] | None = None, *,
                 columns: int = 6, thumb: int = 160, per_page: int = 36, max_bytes: int = DEFAULT_MAX_BYTES,
                 workers: int | None = None) -> None:
        self.pages = SheetPages(images, labels, columns=columns, thumb=thumb, per_page=per_page,
                                max_bytes=max_bytes, workers=workers)
        self.page = 0
        self.image = w.Image(format="jpeg", layout=w.Layout(max_width="100%", height="auto"))
        self.prev_button = w.Button(description="◀ Prev", tooltip="previous page", layout=w.Layout(width="90px"))
        self.next_button = w.Button(description="Next ▶", tooltip="next page", layout=w.Layout(width="90px"))
        self.status = w.HTML(layout=w.Layout(margin="0 0 0 8px"))
        self.prev_button.on_click(lambda _: self.show(self.page - 1))
        self.next_button.on_click(lambda _: self.show(self.page + 1))
        bar = w.HBox([self.prev_button, self.next_button, self.status],
                     layout=w.Layout(align_items="center"))
        super().__init__([bar, self.image])
        self.show(0)

    def show(self, page: int) -> None:
        """Show page ``page`` (clamped to the first and last page)."""
        page = max(0, min(int(page), len(self.pages) - 1))
        self.page = page
        sheet = self.pages[page]
        self.image.value = sheet.jpeg
        start, stop = self.pages.bounds(page)
        total = len(self.pages.items)
        text = f"Page {page + 1} of {len(self.pages)} · images {start + 1 if total else 0}–{stop} of {total}"
        if sheet.failed:
            shown = "; ".join(f"{label}: {message}" for label, message in sheet.failed[:5])
            more = f" and {len(sheet.failed) - 5} more" if len(sheet.failed) > 5 else ""
            text += f" · {len(sheet.failed)} could not be shown ({shown}{more})"
        self.status.value = html.escape(redact(text))
        self.prev_button.disabled = page == 0
        self.next_button.disabled = page >= len(self.pages) - 1

    def next(self) -> None:
        self.show(self.page + 1)

    def prev(self) -> None:
        self.show(self.page - 1)

    def __repr__(self) -> str:
        return f"<ImageGrid page {self.page + 1} of {len(self.pages)}, {len(self.pages.items)} images>"


def image_grid(images: Sequence[ImageSource] | Any, labels: Sequence[object] | None = None, *, columns: int = 6,
               thumb: int = 160, per_page: int = 36, max_bytes: int = DEFAULT_MAX_BYTES,
               workers: int | None = None) -> ImageGrid:
    """A paged grid of images for the notebook: ``images`` as for :func:`contact_sheet`, 36 a page.

    Each page is one JPEG of at most ``max_bytes`` (300 KB by default); Prev / Next change the page.
    """
    return ImageGrid(images, labels, columns=columns, thumb=thumb, per_page=per_page, max_bytes=max_bytes,
                     workers=workers)
