"""Contact sheets and the paged image grid: inputs, orientation, draft decoding, labels, budget, paging."""

from __future__ import annotations

import io
import json
from pathlib import Path

import ipywidgets as w
import pytest
from PIL import Image, ImageChops, ImageDraw, ImageStat

import toolkit
from toolkit.core.errors import ValidationError
from toolkit.widgets import images as mod
from toolkit.widgets.images import ContactSheet, contact_sheet, contact_sheets, image_grid, load_thumbnail
from .conftest import widget_tree

RED, GREEN, BLUE = (220, 20, 20), (20, 200, 20), (20, 20, 220)
THUMB = 64


def solid(colour: tuple[int, int, int], size: tuple[int, int] = (120, 90)) -> Image.Image:
    return Image.new("RGB", size, colour)


def jpeg_bytes(img: Image.Image, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=92, **kw)
    return buf.getvalue()


def tile_centre(sheet: Image.Image, index: int, columns: int, thumb: int = THUMB, labelled: bool = True) -> tuple:
    cell_w = thumb + 2 * mod._PAD
    cell_h = thumb + (16 if labelled else 0) + 2 * mod._PAD
    x = (index % columns) * cell_w + mod._PAD + thumb // 2
    y = (index // columns) * cell_h + mod._PAD + thumb // 2
    return sheet.getpixel((x, y))


def tile_corner(sheet: Image.Image, index: int, columns: int, thumb: int = THUMB) -> tuple:
    """A pixel just inside the tile's top-left corner (placeholder background, away from its text)."""
    cell_w, cell_h = thumb + 2 * mod._PAD, thumb + 16 + 2 * mod._PAD
    return sheet.getpixel(((index % columns) * cell_w + mod._PAD + 2, (index // columns) * cell_h + mod._PAD + 2))


def close(a: tuple, b: tuple, tol: int = 30) -> bool:
    return all(abs(int(x) - int(y)) <= tol for x, y in zip(a, b))


all_widgets = widget_tree


def test_accepts_pil_images_paths_bytes_and_none(tmp_path: Path) -> None:
    path = tmp_path / "red.jpg"
    solid(RED).save(path, quality=92)
    sources = [path, str(path), jpeg_bytes(solid(GREEN)), solid(BLUE), None]
    sheet = toolkit.contact_sheet(sources, columns=5, thumb=THUMB)
    assert isinstance(sheet, Image.Image) and sheet.mode == "RGB"
    assert sheet.count == 5 and sheet.pages == 1
    got = [tile_centre(sheet, i, 5) for i in range(5)]
    assert close(got[0], RED) and close(got[1], RED) and close(got[2], GREEN) and close(got[3], BLUE)
    assert tile_corner(sheet, 4, 5) == mod._TILE_BACKGROUND  # person without photo: a grey "no photo" tile
    assert sheet.failed == []  # no photo is not a failure


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    # stored landscape: left half red, right half blue; orientation 6 = rotate 90° clockwise to display
    img = Image.new("RGB", (200, 100), RED)
    img.paste(BLUE, (100, 0, 200, 100))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    img.save(path, quality=95, exif=exif.tobytes())
    tile = load_thumbnail(path, thumb=100).image
    assert tile is not None
    assert tile.size == (50, 100)  # portrait after rotation
    assert close(tile.getpixel((25, 10)), RED) and close(tile.getpixel((25, 90)), BLUE)


def test_caller_image_is_not_changed_and_orientation_applies_to_pil_images() -> None:
    img = Image.new("RGB", (200, 100), RED)
    exif = img.getexif()
    exif[0x0112] = 8  # rotate 90° counter-clockwise to display
    img.info["exif"] = exif.tobytes()
    tile = load_thumbnail(img, thumb=100).image
    assert tile is not None and tile.size == (50, 100)
    assert img.size == (200, 100)


def test_jpeg_is_decoded_at_reduced_size_and_looks_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = Image.linear_gradient("L").resize((1600, 1200)).convert("RGB")
    big.paste(RED, (0, 0, 800, 600))
    path = tmp_path / "big.jpg"
    big.save(path, quality=90)
    seen: list[tuple[int, int]] = []
    real_finish = mod._finish

    def spy(img: Image.Image, thumb: int) -> Image.Image:
        seen.append(img.size)
        return real_finish(img, thumb)

    monkeypatch.setattr(mod, "_finish", spy)
    tile = load_thumbnail(path, thumb=160).image
    assert tile is not None and tile.size == (160, 120)
    # the decoder was asked for a reduced size: at most 1/2 of 1600 wide, still >= 2x the thumbnail
    assert seen and 320 <= seen[0][0] <= 800, seen
    # and the result matches a thumbnail made from the fully decoded image
    full = Image.open(path).convert("RGB")
    full.thumbnail((160, 160))
    diff = ImageStat.Stat(ImageChops.difference(tile, full)).mean
    assert max(diff) < 6, diff


def test_labels_are_masked_before_drawing(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[str] = []
    real = mod._draw_label

    def spy(draw, xy, text, font, width):  # type: ignore[no-untyped-def]
        drawn.append(text)
        real(draw, xy, text, font, width)

    monkeypatch.setattr(mod, "_draw_label", spy)
    contact_sheet([solid(RED), solid(GREEN), None], labels=["0101901234", "Jens 010190-1234", "3112991234"],
                  thumb=THUMB)
    joined = " | ".join(drawn)
    assert "010190-****" in joined and "311299-****" in joined and "Jens" in joined
    assert "1234" not in joined


def test_default_labels_are_file_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[str] = []
    monkeypatch.setattr(mod, "_draw_label", lambda draw, xy, text, font, width: drawn.append(text))
    path = tmp_path / "portrait.jpg"
    solid(RED).save(path)
    contact_sheet([path, solid(GREEN)], thumb=THUMB)
    assert drawn == ["portrait.jpg", "#2"]


def test_default_labels_from_file_names_mask_every_ten_digit_run(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[str] = []
    monkeypatch.setattr(mod, "_draw_label", lambda draw, xy, text, font, width: drawn.append(text))
    names = ["3201901234.jpg", "\uff10\uff11\uff10\uff11\uff19\uff10\uff11\uff12\uff13\uff14.jpg", "9999999999.jpg"]
    paths = []
    for name in names:  # not dates, or not ASCII: free-text redaction would keep them, a file name must not
        path = tmp_path / name
        solid(RED).save(path, "JPEG")
        paths.append(path)
    sheet = contact_sheet(paths, thumb=THUMB)
    assert len(drawn) == 3 and all("****" in text for text in drawn), drawn
    grid = image_grid(paths + [tmp_path / "1302991234.jpg"])  # the last is missing: its name is in the status
    assert not any("1234" in text or "9999999999" in text for text in drawn)
    status = grid.status.value if hasattr(grid, "status") else ""
    assert "1302991234" not in status and "1302991234" not in str(sheet.failed)


def test_one_label_per_image_is_required() -> None:
    with pytest.raises(ValidationError, match="2 images but 1 labels"):
        contact_sheet([solid(RED), solid(GREEN)], labels=["a"])


def test_broken_images_become_placeholders_and_the_rest_is_there(tmp_path: Path) -> None:
    good = tmp_path / "good.jpg"
    solid(GREEN).save(good)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(jpeg_bytes(solid(RED, (400, 300)))[:300])
    sources = [good, b"this is not an image", tmp_path / "missing.jpg", truncated, solid(BLUE)]
    sheet = contact_sheet(sources, labels=["a", "b", "c", "d", "e"], columns=5, thumb=THUMB)
    assert close(tile_centre(sheet, 0, 5), GREEN) and close(tile_centre(sheet, 4, 5), BLUE)
    for i in (1, 2, 3):
        assert tile_corner(sheet, i, 5) == mod._PLACEHOLDER_BACKGROUND
    assert dict(sheet.failed) == {"b": "not an image", "c": "file not found", "d": "could not decode"}


def test_a_url_is_never_fetched_nor_shown() -> None:
    url = "https://cdn.example.org/p.jpg?token=sekret-abc-123"
    grid = image_grid([url, solid(RED)])
    assert grid.pages[0].failed == [("#1", "a URL: download it first")]
    state = json.dumps([x.get_state() for x in all_widgets(grid) if not isinstance(x, w.Image)], default=str)
    assert "sekret-abc-123" not in state and "http" not in state


def test_every_page_fits_the_byte_budget_with_noisy_images() -> None:
    noisy = [Image.effect_noise((200, 200), 120).convert("RGB") for _ in range(6)]
    noisy = [Image.merge("RGB", (n.getchannel(0), n.getchannel(0).rotate(90), n.getchannel(0).rotate(180)))
             for n in noisy] * 6
    pages = contact_sheets(noisy, per_page=36, thumb=160, max_bytes=300_000)
    sheet = pages[0]
    plain = io.BytesIO()
    sheet.save(plain, "JPEG", quality=85)
    assert len(plain.getvalue()) > 300_000  # without the budget this page would be too big
    assert len(pages.jpeg(0)) <= 300_000
    assert Image.open(io.BytesIO(pages.jpeg(0))).format == "JPEG"
    # a budget so small that only shrinking the page can meet it
    tight = contact_sheets(noisy, per_page=36, thumb=160, max_bytes=40_000)
    data = tight.jpeg(0)
    assert len(data) <= 40_000
    assert Image.open(io.BytesIO(data)).width < sheet.width


def test_sheet_shows_in_a_notebook_as_the_budgeted_jpeg_only() -> None:
    from IPython.core.formatters import DisplayFormatter

    sheet = contact_sheet([solid(RED), solid(BLUE)], thumb=THUMB, max_bytes=50_000)
    assert isinstance(sheet, ContactSheet)
    data, _ = DisplayFormatter().format(sheet)
    assert "image/png" not in data
    assert data["image/jpeg"] and len(sheet.jpeg) <= 50_000


def test_paging_updates_the_one_image_widget() -> None:
    colours = [solid((i * 3 % 256, 100, 200 - i * 2 % 200)) for i in range(80)]
    grid = image_grid(colours, per_page=36, columns=6, thumb=THUMB)
    images = [x for x in all_widgets(grid) if isinstance(x, w.Image)]
    assert len(images) == 1 and images[0] is grid.image
    assert len(grid.pages) == 3
    assert grid.prev_button.disabled and not grid.next_button.disabled
    first = grid.image.value
    assert "Page 1 of 3" in grid.status.value and "1–36 of 80" in grid.status.value
    count = len(w.widgets.widget._instances) if hasattr(w.widgets.widget, "_instances") else None
    grid.next_button.click()
    assert grid.page == 1 and grid.image.value != first
    grid.next()
    assert grid.page == 2 and "73–80 of 80" in grid.status.value
    assert grid.next_button.disabled
    grid.next()  # past the end: stays on the last page
    assert grid.page == 2
    grid.prev()
    assert grid.page == 1
    assert [x for x in all_widgets(grid) if isinstance(x, w.Image)] == [grid.image]
    if count is not None:
        assert len(w.widgets.widget._instances) == count  # paging made no new widgets
    assert len(grid.image.value) <= 300_000


def test_labels_are_escaped_in_the_grid_html() -> None:
    grid = image_grid([b"broken", solid(RED)], labels=["<script>alert(1)</script> 0101901234", "ok"])
    status = grid.status.value
    assert "<script>" not in status
    assert "&lt;script&gt;" in status and "010190-****" in status and "0101901234" not in status


# -- the label font: Nordic letters drawn, not boxes (issue 21) ------------------------------------------------
NORDIC = "åäöæøÅÄÖÆØéü"
EXTENDED_A = "őłčšžŋ"  # Latin Extended-A: Hungarian, Polish, Czech/Slovak, Sámi


def glyph(font: object, text: str) -> Image.Image:
    img = Image.new("L", (64, 48), 0)
    ImageDraw.Draw(img).text((8, 6), text, fill=255, font=font)
    return img


def test_the_label_font_draws_every_nordic_letter_not_its_missing_glyph_box() -> None:
    font = mod.label_font(24)
    box = glyph(font, "\ue000")  # a private-use code point: no font has it, so this is the font's box
    assert glyph(font, "\U0010ffff").tobytes() == box.tobytes()  # the box every missing letter gets
    for letter in NORDIC + EXTENDED_A:
        drawn = glyph(font, letter)
        assert drawn.getbbox() is not None, f"{letter!r} is drawn blank"
        assert drawn.tobytes() != box.tobytes(), f"{letter!r} is drawn as the missing-glyph box"
    assert glyph(font, "ø").tobytes() != glyph(font, "o").tobytes()  # the letter itself, not its base letter


def label_strips(sheet: Image.Image, count: int, thumb: int = THUMB) -> list[bytes]:
    """The label area under each tile of a one-row sheet, as grey pixels."""
    cell_w = thumb + 2 * mod._PAD
    top = mod._PAD + thumb + 1
    return [sheet.crop((i * cell_w, top, (i + 1) * cell_w, top + 16)).convert("L").tobytes() for i in range(count)]


def test_grid_labels_draw_nordic_letters_not_boxes() -> None:
    labels = ["ø", "□", "möte-konferens-04", "m□te-konferens-04", "fika-skärgård-15", "fika-sk\ue000rg\ue000rd-15"]
    grid = image_grid([solid(RED)] * len(labels), labels=labels, columns=len(labels), thumb=THUMB)
    strips = label_strips(grid.pages[0], len(labels))
    assert all(any(s < 200 for s in strip) for strip in strips)  # every label drew something dark
    assert strips[0] != strips[1], "ø is drawn as a box"
    assert strips[2] != strips[3] and strips[4] != strips[5], "Nordic letters are drawn as boxes"


def test_a_decomposed_file_name_is_drawn_as_composed_letters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[str] = []
    monkeypatch.setattr(mod, "_draw_label", lambda draw, xy, text, font, width: drawn.append(text))
    path = tmp_path / "go\u0308teborg-kontor-13.jpg"  # as macOS names it: o + combining diaeresis
    solid(RED).save(path)
    contact_sheet([path], thumb=THUMB)
    assert drawn == ["göteborg-kontor-13.jpg"] and len(drawn[0]) == 22


def test_without_freetype_the_labels_say_so(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(mod.features, "check", lambda name: name != "freetype2")
    monkeypatch.setattr(mod, "_warned", set())
    labels = ["möte", "Łódź □ ő", "fika-skärgård-15-och-en-mycket-lång-etikett.jpg"]
    with pytest.warns(RuntimeWarning, match="without FreeType.*Latin-1"):
        sheet = contact_sheet([solid(RED), solid(GREEN), solid(BLUE)], labels=labels, thumb=THUMB)
    # the bitmap font cannot draw "Ł", "□" or "…": the sheet is still made, with every tile
    assert sheet.count == 3 and close(tile_centre(sheet, 1, 3), GREEN) and close(tile_centre(sheet, 2, 3), BLUE)
    assert any("FreeType" in r.getMessage() for r in caplog.records)


def test_a_missing_font_file_is_said_not_hidden(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> bytes:
        raise FileNotFoundError("fonts/DejaVuSans.ttf")

    monkeypatch.setattr(mod, "_font_data", missing)
    monkeypatch.setattr(mod, "_warned", set())
    with pytest.warns(RuntimeWarning, match="DejaVuSans.ttf is missing.*Reinstall"):
        sheet = contact_sheet([solid(RED)], labels=["möte"], thumb=THUMB)
    assert sheet.count == 1


def test_the_label_font_is_installed_with_the_package() -> None:
    import fnmatch
    import tomllib

    root = Path(__file__).resolve().parents[1]
    fonts = root / "toolkit" / "widgets" / "fonts"
    assert (fonts / mod.LABEL_FONT).is_file() and (fonts / "LICENSE-DejaVu.txt").is_file()
    data = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = data["toolkit.widgets"]
    for name in (mod.LABEL_FONT, "LICENSE-DejaVu.txt"):
        assert any(fnmatch.fnmatch(f"fonts/{name}", p) for p in patterns), name
