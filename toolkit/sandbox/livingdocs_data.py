"""Test images the Livingdocs emulator serves under ``/test-images/NAME`` (made with Pillow, deterministic).

Good ones: ``ok-1.png`` … ``ok-8.png``, ``photo-1.jpg`` … ``photo-4.jpg``, ``anim.gif``, ``logo.svg`` (each
a different size). Broken ones: ``missing.jpg`` (not served: 404), ``page.jpg`` (an HTML page),
``old.bmp`` (a real BMP, a type Livingdocs does not take), ``corrupt.png`` (PNG signature, then garbage).
"""

from __future__ import annotations

import io
from functools import lru_cache

__all__ = ["GOOD_IMAGES", "BROKEN_IMAGES", "make_test_image", "PNG_COUNT", "JPG_COUNT"]

PNG_COUNT = 8
JPG_COUNT = 4

#: name → (width, height) of the good images
GOOD_IMAGES: dict[str, tuple[int, int]] = {
    **{f"ok-{i}.png": (40 + 8 * i, 30 + 4 * i) for i in range(1, PNG_COUNT + 1)},
    **{f"photo-{i}.jpg": (120 + 20 * i, 80 + 10 * i) for i in range(1, JPG_COUNT + 1)},
    "anim.gif": (32, 24),
    "logo.svg": (120, 40),
}
#: name → what is wrong with it
BROKEN_IMAGES: dict[str, str] = {
    "missing.jpg": "404",
    "page.jpg": "html",
    "old.bmp": "bmp",
    "corrupt.png": "corrupt",
}

_COLOURS = [(200, 60, 60), (60, 160, 80), (50, 90, 200), (220, 170, 40), (130, 60, 170), (40, 170, 170),
            (230, 120, 30), (90, 90, 90)]


def _picture(width: int, height: int, n: int, mode: str = "RGB"):
    from PIL import Image, ImageDraw

    img = Image.new(mode, (width, height), _COLOURS[n % len(_COLOURS)])
    draw = ImageDraw.Draw(img)
    draw.rectangle([width // 4, height // 4, 3 * width // 4, 3 * height // 4], fill=(255, 255, 255))
    draw.line([0, 0, width - 1, height - 1], fill=(0, 0, 0), width=2)
    return img


@lru_cache(maxsize=None)
def make_test_image(name: str) -> tuple[bytes, str] | None:
    """``(body, content type)`` of a test image, or None when it is not served (→ 404)."""
    if name in GOOD_IMAGES:
        width, height = GOOD_IMAGES[name]
        if name.endswith(".svg"):
            svg = (f'<?xml version="1.0" encoding="UTF-8"?>\n'
                   f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
                   f'viewBox="0 0 {width} {height}"><rect width="{width}" height="{height}" fill="#2a6"/>'
                   f'<text x="10" y="{height // 2 + 6}" font-size="18" fill="#fff">Sandbox</text></svg>\n')
            return svg.encode(), "image/svg+xml"
        n = int("".join(c for c in name if c.isdigit()) or 0)
        buf = io.BytesIO()
        if name.endswith(".png"):
            _picture(width, height, n).save(buf, format="PNG")
            return buf.getvalue(), "image/png"
        if name.endswith(".jpg"):
            _picture(width, height, n + 3).save(buf, format="JPEG", quality=80)
            return buf.getvalue(), "image/jpeg"
        frames = [_picture(width, height, k).convert("P") for k in range(3)]
        frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=200, loop=0)
        return buf.getvalue(), "image/gif"
    kind = BROKEN_IMAGES.get(name)
    if kind == "html":
        return (b"<!DOCTYPE html><html><head><title>Not found</title></head>"
                b"<body><h1>This is a web page, not a picture</h1></body></html>", "text/html; charset=utf-8")
    if kind == "bmp":
        buf = io.BytesIO()
        _picture(48, 32, 5).save(buf, format="BMP")
        return buf.getvalue(), "image/bmp"
    if kind == "corrupt":
        return b"\x89PNG\r\n\x1a\n" + bytes((i * 37 + 11) % 256 for i in range(600)), "image/png"
    return None
