"""``toolkit livingdocs import FILE``: a file that cannot be read is one plain ValidationError naming the service,
the file (and the line) and what to do — never pandas' EmptyDataError / ParserError — and the CLI prints it as
one message with exit code 3, before connecting to anything."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from toolkit.cli import main
from toolkit.core.errors import ValidationError
from toolkit.livingdocs.cli import read_images

HEADER = "url,id,fileName"


def ragged_csv(path: Path) -> Path:
    """Header of 3 fields; line 14 (the 13th data row) has 4: an unquoted comma in the title."""
    lines = [HEADER] + [f"https://img.example/{i}.png,{i:03d},Title {i}" for i in range(1, 13)]
    lines.append("https://img.example/13.png,013,Title, with a comma")
    lines.append("https://img.example/14.png,014,Title 14")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def unreadable_files(tmp: Path) -> dict[str, tuple[Path, str]]:
    """name → (file, what its message must say)."""
    (tmp / "empty.csv").write_bytes(b"")
    (tmp / "blank.csv").write_text("\n\n  \n", encoding="utf-8")
    (tmp / "fake.xlsx").write_text("url,id\nhttps://img.example/a.png,1\n", encoding="utf-8")
    (tmp / "broken.json").write_text('[{"url": "https://img.example/a.png", "id": ', encoding="utf-8")
    (tmp / "latin1.csv").write_bytes(f"{HEADER}\nhttps://img.example/a.png,1,Bl\u00e5b\u00e6r\n".encode("latin-1"))
    return {
        "empty": (tmp / "empty.csv", "empty.csv cannot be read: it is empty (0 bytes)"),
        "blank": (tmp / "blank.csv", "blank.csv cannot be read: it holds no columns"),
        "ragged": (ragged_csv(tmp / "ragged.csv"),
                   "ragged.csv cannot be read: line 14 has 4 fields but the header has 3"),
        "excel": (tmp / "fake.xlsx", "fake.xlsx cannot be read: it is not an Excel workbook"),
        "json": (tmp / "broken.json", "broken.json cannot be read: it is not a JSON table"),
        "encoding": (tmp / "latin1.csv", "latin1.csv cannot be read: it is not UTF-8 text"),
    }


@pytest.mark.parametrize("case", ["empty", "blank", "ragged", "excel", "json", "encoding"])
def test_a_file_that_cannot_be_read_is_a_plain_validation_error(tmp_path: Path, case: str) -> None:
    path, says = unreadable_files(tmp_path)[case]
    with pytest.raises(ValidationError) as info:
        read_images(str(path))
    text = str(info.value)
    assert text.startswith("Livingdocs: the file ") and says in text, text
    assert "What to do:" in text
    # no pandas exception chained under it
    assert info.value.__cause__ is None and (info.value.__context__ is None or info.value.__suppress_context__)
    for raw in ("EmptyDataError", "ParserError", "Error tokenizing", "C error", "BadZipFile", "Traceback"):
        assert raw not in text


@pytest.mark.parametrize("case", ["empty", "ragged", "excel", "json"])
def test_the_cli_prints_one_plain_message_and_exits_3(tmp_path: Path, case: str, capsys: Any,
                                                      monkeypatch: Any) -> None:
    path, says = unreadable_files(tmp_path)[case]
    monkeypatch.setenv("TOOLKIT_LIVINGDOCS_TOKEN", "ldpat_test-not-a-token")
    # a base URL where nothing listens: the file is read (and refused) before anything is connected
    code = main(["livingdocs", "import", str(path), "--system-name", "archive", "--base-url", "http://127.0.0.1:9"])
    out = capsys.readouterr()
    assert code == 3
    assert out.out == ""
    lines = out.err.strip().splitlines()
    assert lines[0].startswith("error: Livingdocs: the file ") and says in lines[0], out.err
    assert len(lines) == 2 and lines[1].startswith("What to do: ")
    assert "Traceback" not in out.err and "pandas" not in out.err


def test_readable_files_keep_ids_as_text_and_metadata_typed(tmp_path: Path) -> None:
    """The ordinary files still read as before — ids as text with their zeros, metadata numbers as numbers,
    JSON metadata objects as objects — and a semicolon CSV with a byte-order mark (Excel's 'CSV UTF-8' in a
    Nordic locale) reads too."""
    comma = tmp_path / "comma.csv"
    comma.write_text(f"{HEADER},metadata.year\nhttps://img.example/a.png,007,A,1999\n", encoding="utf-8")
    semi = tmp_path / "semi.csv"
    semi.write_text("url;id;fileName;metadata.year\nhttps://img.example/a.png;007;A;1999\n", encoding="utf-8-sig")
    records = tmp_path / "rows.json"
    records.write_text(json.dumps([{"url": "https://img.example/a.png", "id": "007", "fileName": "A",
                                    "metadata": {"caption": "c", "year": 1999}}]), encoding="utf-8")
    for path in (comma, semi):
        df = read_images(str(path))
        assert list(df.columns) == ["url", "id", "fileName", "metadata.year"]
        assert df.loc[0, "id"] == "007" and df.loc[0, "metadata.year"] == 1999
    df = read_images(str(records))
    assert df.loc[0, "id"] == "007" and df.loc[0, "metadata"] == {"caption": "c", "year": 1999}
    xlsx = tmp_path / "rows.xlsx"
    pd.DataFrame({"url": ["https://img.example/a.png"], "id": ["007"], "metadata.year": [1999]}).to_excel(xlsx,
                                                                                                         index=False)
    df = read_images(str(xlsx))
    assert df.loc[0, "id"] == "007" and df.loc[0, "metadata.year"] == 1999
