"""Livingdocs image imports exactly once: a run killed between the service's answer and the journal's record,
a fault mix, and chunks whose every answer was lost (private sandboxes over loopback).

What the emulator holds is the truth: its media library (``em.media``, keyed by system name and external id)
and how often each image was stored or updated (``em.import_counts``).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import toolkit
from toolkit.core.http import RetryPolicy
from toolkit.testing import run_killed

SYSTEM = "archive"
IMPORT_PATH = "/api/v1/import/images"

CHILD = """
import toolkit
with toolkit.livingdocs.connect(base_url=ctx["base_url"], token=ctx["token"]) as lv:
    lv.import_images(ctx["images"], system_name=ctx["system"], chunk_size=ctx["chunk_size"],
                     journal=ctx["journal"], concurrency=1, progress=False)
"""


def posts(em: Any) -> int:
    return sum(1 for r in em.requests if r.method == "POST" and r.path == IMPORT_PATH)


def assert_rows_agree_with_library(res: pd.DataFrame, em: Any) -> None:
    """Every row says what the emulator's media library holds: success/skipped rows name the stored entry,
    failed rows an image that is not there; in_doubt rows may be either."""
    for row in res.itertuples():
        entry = em.entry(SYSTEM, row.external_id)
        if row.outcome in ("success", "skipped"):
            assert entry is not None, f"row {row.Index} says {row.outcome} but the library lacks it"
            assert row.media_id == entry["id"], f"row {row.Index} names another media entry"
        elif row.outcome == "failed":
            assert entry is None, f"row {row.Index} says failed ({row.message}) but the image is stored"
            assert "may have" not in str(row.message)
        else:
            assert row.outcome == "in_doubt", f"row {row.Index}: unexpected outcome {row.outcome!r}"
            assert "in doubt" in row.message and "not imported" not in row.message and "not sent" not in row.message


def assert_each_image_once(em: Any, images: list[dict[str, Any]]) -> None:
    """The library holds every image of the input exactly once (0 lost, 0 duplicates)."""
    keys = {(SYSTEM, i["id"]) for i in images}
    held = [k for k in em.media if k[0] == SYSTEM]
    assert set(held) == keys, f"{len(keys - set(held))} image(s) lost"
    assert len({em.media[k]["id"] for k in held}) == len(keys)  # one media entry each
    stored = Counter({k: em.import_counts[k] for k in keys})
    assert set(stored.values()) == {1}, f"stored more than once: {[k for k, n in stored.items() if n != 1]}"


@pytest.mark.parametrize("kill_at", [1, 2])
def test_killed_between_answer_and_journal_rerun_imports_each_image_once(make_sandbox: Any, tmp_path: Path,
                                                                        kill_at: int) -> None:
    sb = make_sandbox(services=["livingdocs"], seed=11)
    em = sb.emulator("livingdocs")
    em.job_seconds = 0.1
    images = em.sample_images(12)  # three chunks of four
    journal = tmp_path / "import.sqlite"
    code = run_killed(CHILD, kill_at=kill_at, base_url=em.base_url, token=em.write_token, images=images,
                      system=SYSTEM, chunk_size=4, journal=str(journal))
    assert code == -9, "the child was not killed at the chosen chunk"
    assert posts(em) == kill_at  # the service took the chunk whose answer the journal never saw
    sent_before = posts(em)
    with toolkit.livingdocs.connect(**sb.credentials("livingdocs")) as lv:
        job = lv.import_images(images, system_name=SYSTEM, chunk_size=4, journal=journal, progress=False)
        res = job.results()
    assert len(res) == len(images) and res["external_id"].tolist() == [i["id"] for i in images]
    assert set(res["outcome"]) <= {"success", "skipped"}, res[["outcome", "message"]].to_string()
    assert_rows_agree_with_library(res, em)
    assert_each_image_once(em, images)
    # the chunks the journal records done are re-attached, the one killed in flight is sent again (an upsert)
    assert posts(em) - sent_before == 3 - (kill_at - 1)
    killed = res.iloc[(kill_at - 1) * 4:kill_at * 4]
    assert killed["message"].str.contains("earlier run sent these rows without getting the answer").all()
    if kill_at == 2:
        assert res.iloc[:4]["message"].str.contains("re-attached").all()


def test_fault_mix_every_row_agrees_with_the_library(make_sandbox: Any, tmp_path: Path) -> None:
    sb = make_sandbox(services=["livingdocs"], seed=13,
                      faults={"503": 0.15, "429": 0.15, "drop": 0.15, "retry_after": 0.01})
    em = sb.emulator("livingdocs")
    em.job_seconds = 0.1
    images = em.sample_images(200)
    journal = tmp_path / "import.sqlite"
    retry = RetryPolicy(attempts=16, base=0.001, cap=0.01, retry_after_cap=0.01)
    with toolkit.livingdocs.connect(**sb.credentials("livingdocs"), retry=retry) as lv:
        res = lv.import_images(images, system_name=SYSTEM, chunk_size=10, journal=journal,
                               progress=False).results()
        faults = Counter(r.fault for r in em.requests if r.fault)
        assert faults["503"] and faults["429"] and faults["drop"], faults  # the mix really happened
        assert len(res) == len(images) and res["external_id"].tolist() == [i["id"] for i in images]
        assert_rows_agree_with_library(res, em)
        assert set(em.import_counts.values()) <= {1}
        # without faults, the same rows and journal leave every image in the library exactly once
        sb.set_faults("livingdocs")
        again = lv.import_images(images, system_name=SYSTEM, chunk_size=10, journal=journal,
                                 progress=False).results()
    assert set(again["outcome"]) <= {"success", "skipped"}
    assert_rows_agree_with_library(again, em)
    assert_each_image_once(em, images)


def test_chunks_whose_answers_were_all_lost_say_in_doubt_and_a_rerun_settles_them(make_sandbox: Any,
                                                                                  tmp_path: Path) -> None:
    """Every answer lost (half of the requests processed by the service all the same), the media library's
    answers too: the first chunk is sent once — the look in the library that must come before a second send
    fails as well — and its rows say in_doubt, never failed or "not sent"; a service that answers neither
    gets no further chunk (their rows say not sent, and they are not in the library); a re-run with the same
    rows and journal stores each image once."""
    sb = make_sandbox(services=["livingdocs"], seed=17,
                      faults={"drop": 1.0, "exempt": ("/api/v1/import/images/status", "/test-images/")})
    em = sb.emulator("livingdocs")
    em.job_seconds = 0.05
    images = em.sample_images(16)  # four chunks of four, sent one at a time
    journal = tmp_path / "import.sqlite"
    with toolkit.livingdocs.connect(**sb.credentials("livingdocs")) as lv:
        job = lv.import_images(images, system_name=SYSTEM, chunk_size=4, journal=journal, concurrency=1,
                               progress=False)
        res = job.results()
        # the first chunk sent once (never again without a look), the others not at all
        assert job.ids == [] and posts(em) == 1
        assert res["outcome"].tolist() == ["in_doubt"] * 4 + ["failed"] * 12
        assert res.iloc[:4]["message"].str.contains("media library could not be searched").all()
        assert res.iloc[4:]["message"].str.contains("not sent: Livingdocs answered neither").all()
        assert em.jobs, "this seed lets the service process some of the requests whose answer was lost"
        assert_rows_agree_with_library(res, em)
        sb.set_faults("livingdocs")
        again = lv.import_images(images, system_name=SYSTEM, chunk_size=4, journal=journal,
                                 progress=False).results()
    assert set(again["outcome"]) <= {"success", "skipped"}
    assert again.iloc[:4]["message"].str.contains("earlier run sent these rows").all()
    assert again.iloc[4:]["message"].isna().all() and (again.iloc[4:]["outcome"] == "success").all()
    assert_rows_agree_with_library(again, em)
    assert_each_image_once(em, images)
