"""Synthetic Uddata+ data for the sandbox: students with valid CPR numbers and Pillow-made photos.

Everything is derived from a seed, so a sandbox, a test and a notebook see the same data. No real
person's data is used: names are common Danish names combined at random, CPR numbers are generated to
pass stdnum's rules (real date, century from the 7th digit, not in the future); some deliberately fail
modulus 11, like real numbers issued since 2007.
"""

from __future__ import annotations

import datetime as dt
import io
import random
from typing import Any

__all__ = ["make_cpr", "make_students", "make_photo"]

FIRST = ["Anna", "Emma", "Freja", "Ida", "Clara", "Laura", "Sofie", "Mathilde", "Alma", "Ella", "Karla", "Agnes",
         "William", "Noah", "Oscar", "Lucas", "Carl", "Victor", "Malthe", "Emil", "Alfred", "Magnus", "Frederik",
         "Valdemar", "Oliver", "Aksel", "Asta", "Liva", "Nora", "Esther"]
LAST = ["Nielsen", "Jensen", "Hansen", "Pedersen", "Andersen", "Christensen", "Larsen", "Sørensen", "Rasmussen",
        "Jørgensen", "Petersen", "Madsen", "Kristensen", "Olsen", "Thomsen", "Christiansen", "Poulsen", "Johansen",
        "Møller", "Mortensen"]
EDUCATIONS = ["STX", "HHX", "HTX", "HF", "EUX Data", "EUD Tømrer"]
WEIGHTS = (4, 3, 2, 7, 6, 5, 4, 3, 2, 1)


def _century_digits(year: int) -> list[str]:
    """7th digits that encode ``year``'s century under stdnum's (the CPR office's) rule."""
    yy = year % 100
    if 1900 <= year <= 1999:
        return ["0", "1", "2", "3"] + (["4", "9"] if yy >= 37 else [])
    if 2000 <= year <= 2036:
        return ["4", "5", "6", "7", "8", "9"]
    if 2037 <= year <= 2057:
        return ["5", "6", "7", "8"]
    if 1858 <= year <= 1899:
        return ["5", "6", "7", "8"]
    raise ValueError(f"no CPR century digit for {year}")


def _checksum(digits: str) -> int:
    return sum(w * int(d) for w, d in zip(WEIGHTS, digits)) % 11


def make_cpr(rng: random.Random, born: dt.date, modulus11: bool = True) -> str:
    """A CPR number for ``born`` (valid by stdnum); ``modulus11`` chooses whether the old check holds."""
    head = born.strftime("%d%m%y")
    digits7 = _century_digits(born.year)
    for _ in range(2000):
        seq = rng.choice(digits7) + f"{rng.randrange(1000):03d}"
        number = head + seq
        if (_checksum(number) == 0) == modulus11:
            return number
    raise RuntimeError("could not make a CPR number")  # pragma: no cover


def make_students(seed: int, count: int = 120, without_photo: float = 1 / 3) -> list[dict[str, Any]]:
    """``count`` students (dicts of the contract's ``/elever`` fields plus ``has_photo`` and ``photo_seed``)."""
    rng = random.Random(f"uddata-students-{seed}")
    today = dt.date.today()
    seen: set[str] = set()
    students = []
    n_missing = round(count * without_photo)
    missing = set(rng.sample(range(count), n_missing)) if count else set()
    for i in range(count):
        while True:
            born = dt.date(rng.randint(1996, 2009), 1, 1) + dt.timedelta(days=rng.randrange(365))
            if born >= today:
                continue
            number = make_cpr(rng, born, modulus11=rng.random() < 0.6)
            if number not in seen:
                seen.add(number)
                break
        start = dt.date(today.year - rng.randint(0, 2), 8, rng.randint(8, 20))
        education = rng.choice(EDUCATIONS)
        students.append({
            "indi_id": str(100000 + i * 7 + rng.randrange(7)),
            "cpr_nr": number,
            "fornavn": rng.choice(FIRST),
            "efternavn": rng.choice(LAST),
            "stamhold": f"{rng.randint(1, 3)}.{rng.choice('abcdefg')}",
            "uddannelse": education,
            "startdato": start.isoformat(),
            "slutdato": dt.date(start.year + 3, 6, 30).isoformat(),
            "uddannelser": [{"betegnelse": education, "studiestartDato": start.isoformat(),
                             "afgangsdato": None}],
            "has_photo": i not in missing,
            "photo_seed": rng.randrange(1 << 30),
        })
    return students


def make_photo(photo_seed: int, size: tuple[int, int] = (160, 200), quality: int = 80) -> bytes:
    """A small synthetic portrait (a coloured head and shoulders) as JPEG bytes, made with Pillow."""
    from PIL import Image, ImageDraw

    rng = random.Random(photo_seed)
    w, h = size
    bg = tuple(rng.randint(150, 235) for _ in range(3))
    img = Image.new("RGB", size, bg)
    draw = ImageDraw.Draw(img)
    skin = rng.choice([(241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36), (255, 219, 172)])
    shirt = tuple(rng.randint(20, 200) for _ in range(3))
    hair = tuple(rng.randint(10, 120) for _ in range(3))
    draw.ellipse([w * 0.15, h * 0.62, w * 0.85, h * 1.25], fill=shirt)
    draw.ellipse([w * 0.3, h * 0.18, w * 0.7, h * 0.62], fill=skin)
    draw.chord([w * 0.28, h * 0.14, w * 0.72, h * 0.5], 180, 360, fill=hair)
    draw.ellipse([w * 0.4, h * 0.36, w * 0.45, h * 0.4], fill=(30, 30, 30))
    draw.ellipse([w * 0.55, h * 0.36, w * 0.6, h * 0.4], fill=(30, 30, 30))
    draw.arc([w * 0.42, h * 0.42, w * 0.58, h * 0.54], 20, 160, fill=(120, 40, 40), width=2)
    out = io.BytesIO()
    img.save(out, "JPEG", quality=quality)
    return out.getvalue()
