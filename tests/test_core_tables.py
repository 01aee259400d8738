"""Files the analyst gives (CSV, Excel, JSON) that cannot be read are plain ValidationErrors naming the service,
the file and the line — in Python and on the command line — never a pandas or openpyxl traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest

import toolkit
from toolkit.core.errors import ValidationError
from toolkit.core.tables import read_table

from .test_uddata_cli import clean_env, toolkit_command

BAD = {
    "empty.csv": ("", "empty"),
    "blank.csv": ("\n\n\n", "no columns"),
    "ragged.csv": ("cpr;name\n" + "".join(f"01019012{i:02d};n{i}\n" for i in range(12)) + "0101901299;a;b;c\n",
                   "line 14"),
    "fake.xlsx": ("this is not a spreadsheet", "not an Excel workbook"),
    "fake.json": ("{not json", "not a JSON table"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_an_unreadable_file_is_a_plain_validation_error(tmp_path: Path, name: str) -> None:
    text, says = BAD[name]
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValidationError) as info:
        read_table(path, service="uddata", what="one CPR number per row")
    message = str(info.value)
    assert message.startswith("Uddata+:") and name in message and says in message and "What to do" in message
    assert "pandas" not in message and "Error tokenizing" not in message


def test_a_table_keeps_leading_zeros_and_the_audit_reads_it(sb, tmp_path: Path) -> None:
    path = tmp_path / "cprs.csv"
    roster = sb.emulator("uddata").roster()[:2]
    path.write_text("cpr\n" + "\n".join(roster) + "\n")
    assert read_table(path, service="uddata")["cpr"].tolist() == roster
    with toolkit.uddata.connect(**sb.credentials("uddata")) as ud:
        with pytest.raises(ValidationError, match="empty.csv cannot be read: it is empty"):
            (tmp_path / "empty.csv").write_text("")
            ud.audit(tmp_path / "empty.csv", progress=False)
        assert len(ud.audit(path, progress=False)) == 2


@pytest.mark.integration
@pytest.mark.parametrize("name", ["empty.csv", "ragged.csv"])
def test_the_command_line_says_it_in_one_plain_message(tmp_path: Path, name: str) -> None:
    text, says = BAD[name]
    (tmp_path / name).write_text(text)
    done = subprocess.run([*toolkit_command(), "uddata", "audit", name, "--environment", "sandbox"],
                          env=clean_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert says in done.stderr and name in done.stderr and "Traceback" not in done.stderr + done.stdout
    assert pd.__name__ not in done.stderr
