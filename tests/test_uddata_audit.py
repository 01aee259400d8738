"""Audit statuses (no photo vs. not on the roster), one summary, concurrency checks — over loopback."""

from __future__ import annotations

import numpy as np
import pytest

import toolkit
from toolkit import ValidationError
from toolkit.uddata.audit import STATUSES, _looks_like_cpr, missing

pytestmark = pytest.mark.integration

UNKNOWN = "0101901234"  # a valid CPR number that no sandbox roster holds


@pytest.fixture
def ud(sb):
    client = toolkit.uddata.connect(**sb.credentials("uddata"))
    yield client
    client.close()


def test_status_tells_no_photo_from_unknown_cpr(sb, ud):
    emu = sb.emulator("uddata")
    assert UNKNOWN not in emu.roster()
    truth = emu.truth()
    with_photo = next(c for c in emu.roster() if truth[c])
    without = next(c for c in emu.roster() if not truth[c])
    result = ud.audit([with_photo, without, UNKNOWN, "1234", without], progress=False)
    assert result["outcome"].tolist() == ["with_photo", "no_photo", "unknown_cpr", "invalid", "duplicate"]
    assert set(result["outcome"]) <= set(STATUSES)
    assert result["has_image"].tolist()[:3] == [True, False, False]  # unknown_cpr: the service holds no photo
    assert result["http_status"].tolist()[:3] == [200, 404, 404]
    assert "roster" in result["message"][2] and pd_isna(result["message"][1])
    # missing() lists the students to photograph, not numbers Uddata+ does not know
    assert missing(result)["cpr"].tolist() == [without]


def pd_isna(value) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def test_a_404_of_a_wrong_api_version_is_an_error_not_a_missing_photo(sb):
    creds = {**sb.credentials("uddata"), "api_version": "0.7.0"}  # picture endpoints exist since 0.7.5
    with toolkit.uddata.connect(**creds) as old:
        result = old.audit([sb.emulator("uddata").roster()[0]], progress=False)
    assert result["outcome"].tolist() == ["error"]
    assert result["has_image"].isna().all()
    assert "version" in result["message"][0]


def test_the_summary_is_printed_once_and_kept(ud, sb, capsys):
    roster = sb.emulator("uddata").roster()[:6]
    result = ud.audit(roster + [UNKNOWN], progress=True)
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "photo audit" in line]
    assert len(lines) == 1, out
    assert result.attrs["summary"] == lines[0].strip()
    assert "unknown_cpr 1" in lines[0]
    assert not any(c in out for c in roster)
    quiet = ud.audit(roster, progress=False)
    assert capsys.readouterr().out == "" and "photo audit" in quiet.attrs["summary"]


@pytest.mark.parametrize("bad", ["abc", 0, -1, 2.5, True, None])
def test_a_wrong_concurrency_is_a_validation_error(ud, tmp_path, bad):
    with pytest.raises(ValidationError, match="concurrency"):
        ud.audit(["0101901234"], concurrency=bad, progress=False)
    with pytest.raises(ValidationError, match="concurrency"):
        ud.upload_folder(tmp_path, concurrency=bad, progress=False, dry_run=True)


def test_looks_like_cpr_takes_only_ascii_digits():
    assert _looks_like_cpr("010190-1234")
    assert not _looks_like_cpr("０１０１９０１２３４")  # fullwidth digits: a file name, not a CPR
    assert not _looks_like_cpr("٠١٠١٩٠١٢٣٤")
    assert not _looks_like_cpr("²³")


def test_numpy_integers_keep_their_status(ud, sb):
    emu = sb.emulator("uddata")
    zero = next(c for c in emu.roster() if c.startswith("0"))
    result = ud.audit(np.array([int(zero)]), progress=False)
    assert result["cpr"].tolist() == [zero] and result["outcome"][0] in {"with_photo", "no_photo"}


def test_inputs_that_are_not_cpr_numbers_are_shown_as_given(sb) -> None:
    """The analyst sees which input was wrong: only what could be a CPR number is masked on display."""
    with toolkit.uddata.connect(**sb.credentials("uddata")) as ud:
        result = ud.audit(["abc", True, "12345", "0101901234", "010190123"], progress=False)
    shown = result[["cpr", "outcome"]].to_string()
    for given in ("abc", "True", "12345"):
        assert given in shown
    assert "010190-****" in shown and "0101901234" not in shown and "010190123" not in shown
    assert result["outcome"].tolist()[:3] == ["invalid"] * 3
