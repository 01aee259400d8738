"""Photos made ready before they are sent (issue 22): each kind of file a school's folder holds — every EXIF
orientation, GPS and other metadata, HEIC, 16-bit PNG, CMYK, a foreign colour profile, a 15 MB photographer's
file, broken files, the same photo under two CPR numbers — is generated here and prepared; the pixels, the
bytes and the rows are checked. The helpers are shared with the upload and command-line tests."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import random
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

import toolkit
from toolkit.core.errors import ValidationError
from toolkit.sandbox.uddata_data import make_cpr, make_photo
from toolkit.uddata import prepare as prep

# -- generated files ------------------------------------------------------------------------------------------
#: CPR numbers made for these tests (valid dates, not in any sandbox roster)
CPRS = [make_cpr(random.Random(i), dt.date(2005, 1 + i % 12, 1 + i)) for i in range(24)]


def reference(seed: int, size: tuple[int, int] = (480, 600)) -> Image.Image:
    """An upright portrait that shows any wrong turn or mirror: a red block top-left, a blue bar bottom-right."""
    img = Image.open(io.BytesIO(make_photo(seed, size=size, quality=95))).convert("RGB")
    w, h = size
    img.paste((220, 20, 20), (0, 0, w // 4, h // 5))
    img.paste((20, 20, 220), (w // 2, h - h // 8, w, h))
    return img


#: the stored picture whose EXIF orientation ``o`` shows ``reference`` upright (worked out from the EXIF
#: specification's words for each value, not from Pillow's exif_transpose)
STORED_AS = {
    1: lambda img: img,
    2: lambda img: img.transpose(Image.Transpose.FLIP_LEFT_RIGHT),   # shown mirrored back
    3: lambda img: img.transpose(Image.Transpose.ROTATE_180),
    4: lambda img: img.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
    5: lambda img: img.transpose(Image.Transpose.TRANSPOSE),         # row 0 is the left side, column 0 the top
    6: lambda img: img.transpose(Image.Transpose.ROTATE_90),         # shown turned 90° clockwise: stored anticlockwise
    7: lambda img: img.transpose(Image.Transpose.TRANSVERSE),
    8: lambda img: img.transpose(Image.Transpose.ROTATE_270),        # shown turned anticlockwise: stored clockwise
}


def camera_exif(orientation: int = 1, gps: bool = True) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "PhoneMaker"            # Make
    exif[0x0110] = "Phone 15"              # Model
    exif[0x0132] = "2025:08:14 09:12:33"   # DateTime
    if gps:
        ifd = exif.get_ifd(0x8825)
        ifd[1], ifd[2] = "N", (55.0, 40.0, 12.5)
        ifd[3], ifd[4] = "E", (12.0, 34.0, 56.0)
    return exif.tobytes()


XMP = (b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
       b'<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="55,40.2N" '
       b'exif:GPSLongitude="12,34.9E"/></rdf:RDF></x:xmpmeta>')


def encode(img: Image.Image, fmt: str = "JPEG", **options: object) -> bytes:
    buffer = io.BytesIO()
    if fmt == "HEIF":
        prep._register_heif()
    img.save(buffer, fmt, **options)
    return buffer.getvalue()


def with_segment(jpeg: bytes, marker: int, payload: bytes) -> bytes:
    """``jpeg`` with one more marker segment right after its start (IPTC, maker data …)."""
    return jpeg[:2] + bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def phone_jpeg(ref: Image.Image, orientation: int, **options: object) -> bytes:
    """What a phone writes: the sensor's pixels, the rotation only as an EXIF flag, GPS, XMP and a comment."""
    data = encode(STORED_AS[orientation](ref), quality=95, exif=camera_exif(orientation), xmp=XMP,
                  comment=b"taken at school", **options)
    iptc = b"Photoshop 3.0\x008BIM\x04\x04\x00\x00\x00\x00\x00\x0c\x1c\x02\x05\x00\x07Outing!"
    return with_segment(with_segment(data, 0xED, iptc), 0xE5, b"MAKER\x00private")


def png_16bit_rgb(values: np.ndarray) -> bytes:
    """A 48-bit PNG (16 bits per channel, which Pillow cannot write) from an (h, w, 3) uint16 array."""
    h, w, _ = values.shape
    raw = b"".join(b"\x00" + values[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def pixel_bomb() -> bytes:
    """A PNG header declaring 30,000 × 30,000 pixels over a few bytes of data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 30001 * 4)) + chunk(b"IEND", b""))


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def icc_profile(name: str, red: tuple, green: tuple, blue: tuple, gamma: float = 2.2) -> bytes:
    """A minimal ICC v2 RGB matrix/curve profile (so a test can tag a picture with a profile that is not sRGB)."""
    def xyz(v: tuple) -> bytes:
        return b"XYZ " + b"\0" * 4 + b"".join(_s15(c) for c in v)

    text = name.encode("ascii") + b"\0"
    desc = b"desc" + b"\0" * 4 + struct.pack(">I", len(text)) + text + b"\0" * 8 + b"\0" * 3 + b"\0" * 67
    curve = b"curv" + b"\0" * 4 + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"
    tags = [(b"desc", desc), (b"wtpt", xyz((0.9642, 1.0, 0.8249))), (b"rXYZ", xyz(red)), (b"gXYZ", xyz(green)),
            (b"bXYZ", xyz(blue)), (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve),
            (b"cprt", b"text" + b"\0" * 4 + b"test\0")]
    start = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        body += b"\0" * (-(start + len(body)) % 4)
        table += sig + struct.pack(">II", start + len(body), len(data))
        body += data
    header = (struct.pack(">I", start + len(body)) + b"\0" * 4 + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
              + struct.pack(">6H", 2020, 1, 1, 0, 0, 0) + b"acsp" + b"\0" * 28 + _s15(0.9642) + _s15(1.0)
              + _s15(0.8249) + b"\0" * 48)
    return header + struct.pack(">I", len(tags)) + table + body


SRGB_RED, SRGB_GREEN, SRGB_BLUE = (0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141)
#: a profile whose red is sRGB's green and whose green is sRGB's red: converted, (200, 40, 40) shows green
SWAPPED = icc_profile("Swapped red-green test RGB", SRGB_GREEN, SRGB_RED, SRGB_BLUE)


def big_jpeg(megabytes: float = 15.0) -> bytes:
    """A photographer's file over 10 MB (fine grain compresses badly, as in a 24-megapixel original)."""
    side = int((megabytes / 14.2) ** 0.5 * 2400)
    noise = np.random.default_rng(7).integers(0, 256, (side * 5 // 4, side, 3), dtype=np.uint8)
    return encode(Image.fromarray(noise), quality=100)


def blocks(img: Image.Image, size: tuple[int, int] = (12, 15)) -> np.ndarray:
    return np.asarray(img.convert("RGB").resize(size, Image.Resampling.BOX), dtype=np.int16)


def assert_same_picture(data: bytes, expected: Image.Image, tolerance: int = 24) -> None:
    """``data`` shows ``expected``: same size, and every block of the picture within ``tolerance``."""
    got = Image.open(io.BytesIO(data))
    assert got.format == "JPEG" and got.size == expected.size, (got.format, got.size, expected.size)
    worst = int(np.abs(blocks(got) - blocks(expected)).max())
    assert worst <= tolerance, f"the picture differs from the upright original (worst block {worst})"


def assert_no_metadata(data: bytes) -> None:
    """No EXIF, XMP, GPS, IPTC, comment or maker segment left (checked on the bytes and through Pillow)."""
    for needle in (b"Exif\x00\x00", b"ns.adobe.com", b"Photoshop 3.0", b"taken at school", b"MAKER", b"GPS",
                   b"PhoneMaker", b"55,40"):
        assert needle not in data, needle
    img = Image.open(io.BytesIO(data))
    assert not img.getexif() and not {"exif", "xmp", "comment", "photoshop"} & set(img.info)
    assert [m for m, _ in img.applist if m not in ("APP0", "APP2")] == []


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- one photo ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_made_upright_and_metadata_goes(orientation: int) -> None:
    ref = reference(orientation)
    prepared = prep.prepare_bytes(phone_jpeg(ref, orientation))
    assert_same_picture(prepared.data, ref)
    assert_no_metadata(prepared.data)
    facts = prep.describe(prepared.facts(), prep.Settings())
    assert facts["rotated"] is (orientation != 1)
    assert {"EXIF", "GPS", "XMP", "IPTC", "comment", "maker data"} <= set(facts["metadata_removed"].split(", "))


def test_a_sideways_phone_photo_is_not_only_re_flagged() -> None:
    """The stored pixels are turned: a viewer that ignores EXIF (many do) shows it upright too."""
    ref = reference(3)
    prepared = prep.prepare_bytes(phone_jpeg(ref, 6))
    img = Image.open(io.BytesIO(prepared.data))
    assert img.getexif().get(0x0112) is None and img.size == (480, 600)
    assert tuple(img.getpixel((20, 20)))[0] > 180  # the red block is top-left in the pixels themselves


def test_heic_is_read_turned_and_converted() -> None:
    ref = reference(11)
    heic = encode(STORED_AS[6](ref), "HEIF", quality=92, exif=camera_exif(6), xmp=XMP)
    look = prep.inspect_photo(heic)
    assert look.format == "HEIF" and (look.width, look.height) == (480, 600) and look.orientation == 6
    prepared = prep.prepare_bytes(heic)
    assert_same_picture(prepared.data, ref, tolerance=30)
    assert_no_metadata(prepared.data)
    facts = prep.describe(prepared.facts(), prep.Settings())
    assert facts["converted"] and facts["rotated"] and "converted from HEIC to JPEG" in facts["actions"]


def test_16_bit_pngs_become_8_bit_without_clipping() -> None:
    ramp = np.linspace(0, 65535, 300 * 400).reshape(400, 300).astype(np.uint16)
    gray = prep.prepare_bytes(encode(Image.fromarray(ramp), "PNG"))
    expected = Image.fromarray((ramp / 257).round().astype(np.uint8), "L")
    assert_same_picture(gray.data, expected, tolerance=3)  # a plain convert("RGB") clips it all to white
    rgb16 = np.stack([ramp, ramp[::-1], np.full_like(ramp, 40000)], axis=2)
    colour = prep.prepare_bytes(png_16bit_rgb(rgb16))
    assert_same_picture(colour.data, Image.fromarray((rgb16 >> 8).astype(np.uint8), "RGB"), tolerance=4)
    assert "converted from PNG to JPEG" in prep.describe(colour.facts(), prep.Settings())["actions"]


def test_cmyk_jpeg_becomes_rgb() -> None:
    ref = reference(12)
    data = encode(ref.convert("CMYK"), quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    prepared = prep.prepare_bytes(data)
    assert Image.open(io.BytesIO(prepared.data)).mode == "RGB"
    assert_same_picture(prepared.data, ref)
    assert "CMYK converted to RGB" in (prepared.colour or "")


def test_a_colour_profile_is_converted_to_srgb_not_dropped() -> None:
    img = Image.new("RGB", (400, 500), (200, 40, 40))
    prepared = prep.prepare_bytes(encode(img, quality=95, icc_profile=SWAPPED))
    out = Image.open(io.BytesIO(prepared.data))
    r, g, b = out.getpixel((200, 250))
    assert g > 170 and r < 80 and b < 80, (r, g, b)  # dropping the profile would leave it red
    srgb = ImageCms.ImageCmsProfile(io.BytesIO(out.info["icc_profile"]))
    assert "srgb" in ImageCms.getProfileDescription(srgb).lower()  # tagged as what it now is
    assert "'Swapped red-green test RGB' converted to sRGB" in (prepared.colour or "")
    # an sRGB photo keeps its colours
    same = prep.prepare_bytes(encode(img, quality=95, icc_profile=icc_profile("sRGB test", SRGB_RED, SRGB_GREEN,
                                                                                SRGB_BLUE), exif=camera_exif(1)))
    assert abs(Image.open(io.BytesIO(same.data)).getpixel((200, 250))[0] - 200) < 8


def test_a_photographers_15_mb_file_is_scaled_to_the_limits() -> None:
    data = big_jpeg(15)
    assert len(data) > 14 * 1024 * 1024
    prepared = prep.prepare_bytes(data)
    assert len(prepared.data) <= 10 * 1024 * 1024 and max(prepared.width, prepared.height) == 2000
    tight = prep.Settings.of(max_side=1600, max_bytes=400_000)
    small = prep.prepare_bytes(data, tight)
    assert len(small.data) <= 400_000 and max(Image.open(io.BytesIO(small.data)).size) < 1600  # quality, then size
    assert "JPEG quality lowered to" in prep.describe(small.facts(), tight)["actions"]


def test_a_ready_jpeg_is_used_as_it_is() -> None:
    data = encode(reference(4), quality=88)
    prepared = prep.prepare_bytes(data)
    assert prepared.kept and prepared.data == data
    assert prep.describe(prepared.facts(), prep.Settings())["actions"].startswith("nothing to change")


@pytest.mark.parametrize("data, outcome", [
    (b"", "not_a_picture"),
    (b"%PDF-1.4 not a photo", "not_a_picture"),
    (pixel_bomb(), "pixel_bomb"),
    (encode(reference(1), quality=90)[:6000], "damaged"),
    (encode(reference(1, (150, 180))), "too_small"),
], ids=["empty", "pdf", "pixel-bomb", "truncated", "too-small"])
def test_each_check_is_an_outcome_with_a_plain_message(data: bytes, outcome: str) -> None:
    look = prep.inspect_photo(data)
    assert look.problem is not None and look.problem[0] == outcome
    assert look.problem[1].startswith("not prepared: ")
    with pytest.raises(prep.PhotoProblem) as raised:
        prep.prepare_bytes(data)
    assert raised.value.outcome == outcome


def test_a_corrupt_png_is_damaged() -> None:
    data = bytearray(encode(reference(2), "PNG"))
    start = data.index(b"IDAT") + 200
    data[start:start + 400] = bytes(400)
    assert prep.inspect_photo(bytes(data)).problem[0] == "damaged"


def test_settings_are_checked_before_anything_is_read(tmp_path: Path) -> None:
    for wrong in ({"max_side": 0}, {"max_bytes": 20 * 1024 * 1024}, {"min_size": "big"}, {"quality": 101},
                  {"max_side": 150, "min_size": (200, 250)}):
        with pytest.raises(ValidationError):
            prep.prepare_photos(tmp_path, **wrong)


# -- duplicates -----------------------------------------------------------------------------------------------
def test_find_duplicates_keeps_one_cpr_and_distinct_numbers_apart() -> None:
    a, b = prep.inspect_photo(encode(reference(5), quality=90)), prep.inspect_photo(encode(reference(6), quality=90))
    same = [("x", "1", a.phash, a.thumb), ("y", "2", a.phash, a.thumb), ("z", "3", b.phash, b.thumb)]
    assert prep.find_duplicates(same) == {"x": ["y"], "y": ["x"]}
    assert prep.find_duplicates(same, distinct={"1", "2"}) == {}
    assert prep.find_duplicates([("x", "1", a.phash, a.thumb), ("y", "1", a.phash, a.thumb)]) == {}


def test_different_students_photos_are_not_taken_for_one() -> None:
    """The sandbox's portraits share one layout (only colours differ): the hash alone would call them alike."""
    looks = [prep.inspect_photo(make_photo(seed, size=(400, 500))) for seed in range(60)]
    assert prep.find_duplicates([(i, str(i), x.phash, x.thumb) for i, x in enumerate(looks)]) == {}


# -- a folder -------------------------------------------------------------------------------------------------
def school_folder(folder: Path) -> dict[str, str]:
    """A folder as schools have them; returns file name → the outcome preparing must give."""
    folder.mkdir(parents=True)
    c = CPRS
    files = {
        f"{c[0]}.jpg": (phone_jpeg(reference(20), 6), "prepared"),
        f"{c[1]}.heic": (encode(reference(21), "HEIF", quality=90, exif=camera_exif(1)), "prepared"),
        f"{c[2][:6]}-{c[2][6:]}.PNG": (encode(reference(22).convert("RGBA"), "PNG"), "prepared"),
        f"{c[3]}.webp": (encode(reference(23), "WEBP", quality=90), "prepared"),
        f"{c[4]}.tif": (encode(reference(24), "TIFF"), "prepared"),
        f"{c[5]}.jpg": (encode(reference(25), quality=92, exif=camera_exif(1)), "duplicate_photo"),
        f"{c[6]}.jpg": (encode(reference(25), quality=60), "duplicate_photo"),                     # re-saved
        f"{c[7]}.png": (encode(reference(25).resize((240, 300)).resize((480, 600)), "PNG"), "duplicate_photo"),
        f"{c[8]}.jpg": (b"these are not the photos", "not_a_picture"),
        f"{c[9]}.jpg": (encode(reference(26), quality=90)[:5000], "damaged"),
        f"{c[10]}.png": (pixel_bomb(), "pixel_bomb"),
        f"{c[11]}.jpg": (encode(reference(27, (120, 150))), "too_small"),
        "class photo.jpg": (encode(reference(28)), "invalid_name"),
        f"{c[12]}.gif": (encode(reference(29), "GIF"), "invalid_name"),
    }
    for name, (data, _) in files.items():
        (folder / name).write_bytes(data)
    (folder / "old").mkdir()
    return {name: outcome for name, (_, outcome) in files.items()} | {"old": "folder"}


def test_a_folder_is_prepared_one_row_per_entry_originals_unchanged(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    expected = school_folder(folder)
    before = {p.name: (sha(p), p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file()}
    result = prep.prepare_photos(folder, progress=False)
    assert dict(zip(result["file"].astype(str), result["outcome"])) == expected
    assert {p.name: (sha(p), p.stat().st_mtime_ns) for p in folder.iterdir() if p.is_file()} == before
    out = folder / "prepared"
    made = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert made == sorted(f"{CPRS[i]}.jpg" for i in range(5))  # duplicates and refused files: no copy
    for name in made:
        data = (out / name).read_bytes()
        assert len(data) <= 10 * 1024 * 1024
        assert_no_metadata(data)
    assert_same_picture((out / f"{CPRS[0]}.jpg").read_bytes(), reference(20))
    assert_same_picture((out / f"{CPRS[2]}.jpg").read_bytes(), reference(22))
    assert result.attrs["kind"] == "assets" and result.attrs["service"] == "uddata"
    assert str(result["cpr"].dtype) == "cpr" and "Uddata+: photo preparation" in result.summary


def test_duplicate_rows_name_each_other_and_distinct_lets_them_through(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    school_folder(folder)
    result = prep.prepare_photos(folder, progress=False)
    rows = result.set_index(result["file"].astype(str))
    group = [f"{CPRS[5]}.jpg", f"{CPRS[6]}.jpg", f"{CPRS[7]}.png"]
    for name in group:
        others = set(str(rows.loc[name, "duplicate_of"]).split(", "))
        assert others == set(group) - {name}
        assert "the same photo as" in rows.loc[name, "message"] and CPRS[5] not in rows.loc[name, "message"]
    again = prep.prepare_photos(folder, progress=False, distinct=[CPRS[5], CPRS[6], CPRS[7]])
    outcomes = dict(zip(again["file"].astype(str), again["outcome"]))
    assert {outcomes[name] for name in group} == {"prepared"}


def test_a_re_run_prepares_nothing_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "photos"
    school_folder(folder)
    first = prep.prepare_photos(folder, progress=False)
    out = folder / "prepared"
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.jpg")}
    calls = {"inspect": 0, "prepare": 0}
    inspect, prepare = prep.inspect_photo, prep.prepare_bytes
    monkeypatch.setattr(prep, "inspect_photo", lambda *a, **k: calls.__setitem__("inspect", calls["inspect"] + 1)
                        or inspect(*a, **k))
    monkeypatch.setattr(prep, "prepare_bytes", lambda *a, **k: calls.__setitem__("prepare", calls["prepare"] + 1)
                        or prepare(*a, **k))
    again = prep.prepare_photos(folder, progress=False)
    done = first["outcome"] == "prepared"
    assert set(again["outcome"][done]) == {"already_prepared"}
    assert again["actions"][done].tolist() == first["actions"][done].tolist()  # the row still says what was done
    assert calls["prepare"] == 0 and calls["inspect"] == int((~done & first["cpr"].notna()).sum())
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.jpg")} == stamps
    (out / f"{CPRS[0]}.jpg").unlink()                        # a copy deleted: made again, only that one
    (out / f"{CPRS[1]}.jpg").write_bytes(b"changed by hand")  # a copy changed: made again
    third = prep.prepare_photos(folder, progress=False)
    assert sorted(third["file"][third["outcome"] == "prepared"].astype(str)) == [f"{CPRS[0]}.jpg", f"{CPRS[1]}.heic"]
    assert calls["prepare"] == 2
    other = prep.prepare_photos(folder, progress=False, max_side=300)  # other settings: prepared again
    assert (other["outcome"] == "prepared").sum() == done.sum()
    assert max(Image.open(out / f"{CPRS[0]}.jpg").size) == 300


def test_a_photo_that_becomes_a_duplicate_loses_its_earlier_copy(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / f"{CPRS[0]}.jpg").write_bytes(encode(reference(40), quality=90))
    assert prep.prepare_photos(folder, progress=False)["outcome"].tolist() == ["prepared"]
    (folder / f"{CPRS[1]}.jpg").write_bytes(encode(reference(40).resize((400, 500)), quality=70))
    again = prep.prepare_photos(folder, progress=False)
    assert again["outcome"].tolist() == ["duplicate_photo", "duplicate_photo"]
    assert "earlier prepared copy was removed" in again["message"].iloc[0]
    assert not (folder / "prepared" / f"{CPRS[0]}.jpg").exists()


def test_a_dry_run_writes_nothing_and_says_what_it_would_do(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    school_folder(folder)
    dry = prep.prepare_photos(folder, dry_run=True, progress=False)
    assert not (folder / "prepared").exists()
    would = dry[dry["outcome"] == "would_prepare"]
    assert len(would) == 5
    first = would.set_index(would["file"].astype(str)).loc[f"{CPRS[0]}.jpg"]
    assert "rotated upright (EXIF orientation 6" in first["actions"] and "GPS" in first["actions"]


def test_out_is_never_the_photo_folder_and_rows_mask_cpr_numbers(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    school_folder(folder)
    with pytest.raises(ValidationError, match="originals are never changed"):
        prep.prepare_photos(folder, out=folder, progress=False)
    result = prep.prepare_photos(folder, out=tmp_path / "ready", progress=False)
    assert (tmp_path / "ready" / f"{CPRS[0]}.jpg").is_file() and not (folder / "prepared").exists()
    shown = repr(result) + result.to_html() + result.summary + json.dumps(result["message"].tolist())
    for cpr in CPRS[:12]:
        assert cpr not in shown
    assert result["file"].astype(str).str.contains(CPRS[0]).any()  # the number for code


def test_the_client_method_and_the_package_function_agree(sb, tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / f"{CPRS[0]}.jpg").write_bytes(phone_jpeg(reference(41), 8))
    with toolkit.uddata.connect(**sb.credentials("uddata")) as ud:
        result = ud.prepare_photos(folder, out=tmp_path / "a", progress=False)
    assert result["outcome"].tolist() == ["prepared"]
    assert (tmp_path / "a" / f"{CPRS[0]}.jpg").read_bytes() == prep.prepare_bytes(
        (folder / f"{CPRS[0]}.jpg").read_bytes()).data  # the same bytes every time: re-runs can compare
