"""Filled sheets that went through a spreadsheet program score exactly like the sheets the
annotators meant to return.

No spreadsheet program runs here: :func:`excel_opens_csv` turns each CSV cell into what Excel
makes of it with its "General" format (a 19-digit video id becomes the number 7E+18, ``1/2``
the date 2 January, ``+1`` and ``=1+1`` formulas, ``007`` the number 7, ``TRUE`` a boolean),
openpyxl writes the workbook as Excel saves it (those numbers, dates and booleans as typed
cells), and :func:`excel_saves_csv` writes a CSV the way Excel does (each cell as "General"
displays it: ``7E+18``, ``2-Jan``; ``,`` or, in a locale with a decimal comma, ``;``)."""

from __future__ import annotations

import csv
import datetime
import logging
import re
from pathlib import Path

import openpyxl
import pytest

from annotation_sim import fill_sheets, offset_rater
from kit_fixtures import SYSTEMS, write_split
from tiktalk.io import write_jsonl
from tiktalk.report.kit.annotation import SheetError
from tiktalk.report.kit.human_eval import make_sheets, score
from tiktalk.report.kit.settings import Scale
from tiktalk.report.kit.sheet_io import read_table, separator_of

# Responses that spreadsheet programs rewrite when they open a CSV.
TRICKY = ("1/2", "+1", "=1+1", "007", "TRUE", "1e5", "-3", "12:30", "@home")
ANNOTATORS = ["annotator_1", "annotator_2", "annotator_3"]


def excel_value(text: str):
    """What Excel's "General" format makes of a CSV cell it opens."""
    if text in ("TRUE", "FALSE"):
        return text == "TRUE"
    if re.fullmatch(r"[+-]?\d+(\.\d+)?([eE][+-]?\d+)?", text):
        number = float(text)
        return int(number) if number.is_integer() and abs(number) < 1e15 else number
    if m := re.fullmatch(r"(\d{1,2})/(\d{1,2})", text):                  # month/day, en-US
        return datetime.datetime(2026, int(m.group(1)), int(m.group(2)))
    if m := re.fullmatch(r"(\d{1,2}):(\d{2})", text):
        return datetime.time(int(m.group(1)), int(m.group(2)))
    if text.startswith("=1+1"):
        return 2
    return text


def excel_opens_csv(path: Path) -> tuple[list[str], list[list]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        records = list(csv.reader(fh))
    return records[0], [[excel_value(cell) for cell in r] for r in records[1:]]


def excel_saves_xlsx(path: Path, header: list[str], rows: list[list]) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(header)
    for row in rows:
        sheet.append(row)
        for cell in sheet[sheet.max_row]:
            if isinstance(cell.value, datetime.datetime):
                cell.number_format = "d-mmm"
    book.save(path)


def general(value) -> str:
    """A cell as Excel's "General" format shows it (and writes it into a CSV)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, datetime.datetime):
        return f"{value.day}-{value.strftime('%b')}"
    if isinstance(value, datetime.time):
        return value.strftime("%H:%M")
    if isinstance(value, (int, float)):
        if float(value).is_integer() and abs(value) < 1e11:
            return str(int(value))
        mantissa, exponent = f"{value:.5E}".split("E")
        return f"{mantissa.rstrip('0').rstrip('.')}E+{int(exponent)}"
    return str(value)


def excel_saves_csv(path: Path, header: list[str], rows: list[list], sep: str = ",") -> None:
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh, delimiter=sep, lineterminator="\r\n")
        writer.writerow(header)
        writer.writerows([general(v) for v in row] for row in rows)


@pytest.fixture()
def kit(tmp_path):
    rows = write_split(tmp_path / "test.jsonl", n_videos=6, per_video=2)
    paths = {}
    for s, system in enumerate(SYSTEMS):            # every system sometimes answers trickily
        paths[system] = tmp_path / "predictions" / system / "test.jsonl"
        write_jsonl(paths[system], ({"dialogue_id": r["dialogue_id"],
                                     "response": TRICKY[(k + s) % len(TRICKY)] if (k + s) % 2 else
                                     f"回复 {k} 号"} for k, r in enumerate(rows)))
    make_sheets(tmp_path / "test.jsonl", paths, split="test", n=8, annotators=3, seed=4,
                scale=Scale(), sheets_dir=tmp_path / "sheets", key_path=tmp_path / "key.json")
    rate = offset_rater(lambda item, system, c: 2 + (SYSTEMS.index(system) + int(item[1:])) % 3, ANNOTATORS)
    fill_sheets(tmp_path / "sheets", tmp_path / "key.json", tmp_path / "typed", rate)
    return {"dir": tmp_path, "key": tmp_path / "key.json", "typed": tmp_path / "typed",
            "expected": score(tmp_path / "typed", tmp_path / "key.json")}


def test_the_simulated_excel_rewrites_the_cells_that_trouble_real_sheets(kit):
    header, rows = excel_opens_csv(kit["typed"] / "annotator_1.csv")
    cells = [general(v) for row in rows for v in row]
    assert "7E+18" in cells                                          # the video ids
    for text, shown in (("1/2", "2-Jan"), ("+1", "1"), ("=1+1", "2"), ("007", "7"), ("1e5", "100000")):
        assert shown in cells and text not in cells


def test_csv_filled_in_excel_saved_as_xlsx_and_as_csv(kit, tmp_path, caplog):
    """The filled CSV opened in Excel: saved as .xlsx, as CSV, and as CSV with ';' (a
    decimal-comma locale, named in the log); each scores as the sheets meant."""
    caplog.set_level(logging.INFO, logger="tiktalk.report.kit.sheet_io")
    for name, sep in (("xlsx", None), ("csv", ","), ("csv_semicolon", ";")):
        out = tmp_path / name
        out.mkdir()
        for annotator in ANNOTATORS:
            header, rows = excel_opens_csv(kit["typed"] / f"{annotator}.csv")
            if sep is None:
                excel_saves_xlsx(out / f"{annotator}.xlsx", header, rows)
            else:
                excel_saves_csv(out / f"{annotator}.csv", header, rows, sep)
        assert score(out, kit["key"]) == kit["expected"], name
    text = (tmp_path / "csv" / "annotator_1.csv").read_text(encoding="utf-8-sig")
    assert "7E+18" in text and "2-Jan" in text, "the round trip did not rewrite the cells"
    assert separator_of((tmp_path / "csv_semicolon" / "annotator_1.csv").read_text(
        encoding="utf-8-sig").split("\n", 1)[0]) == ";"
    assert f"{tmp_path / 'csv_semicolon' / 'annotator_1.csv'}: ';'-separated, read as such" in caplog.text
    assert "csv/annotator_1.csv: " not in caplog.text


def test_the_kits_xlsx_keeps_every_cell_through_excel(kit, tmp_path):
    """The kit's own .xlsx: its text cells are typed as text, so a spreadsheet program keeps
    each one as written; ratings typed as numbers score like the CSV."""
    key_rows = {}
    (tmp_path / "filled").mkdir()
    for annotator in ANNOTATORS:
        typed_header, typed_rows = read_table(kit["typed"] / f"{annotator}.csv")
        key_rows = {(r["item"], r["slot"]): r for r in typed_rows}
        book = openpyxl.load_workbook(kit["dir"] / "sheets" / f"{annotator}.xlsx")
        sheet = book.worksheets[0]
        header = [c.value for c in sheet[1]]
        assert header == typed_header
        for row in sheet.iter_rows(min_row=2):
            values = {h: c for h, c in zip(header, row)}
            for h, cell in values.items():
                if h not in Scale().criteria:
                    assert cell.data_type == "s" and cell.number_format == "@", (h, cell.value)
            want = key_rows[(values["item"].value, values["slot"].value)]
            for c in Scale().criteria:
                values[c].value = int(want[c])                     # typed as numbers
        book.save(tmp_path / "filled" / f"{annotator}.xlsx")
    reread = openpyxl.load_workbook(tmp_path / "filled" / "annotator_3.xlsx").worksheets[0]
    shown = [c.value for row in reread.iter_rows(min_row=2) for c in row]
    assert any(t in shown for t in TRICKY) and any(isinstance(v, str) and len(v) == 19 and v.isdigit()
                                                  for v in shown)
    assert score(tmp_path / "filled", kit["key"]) == kit["expected"]


def test_old_sheet_through_excel_says_what_happened(kit, tmp_path):
    """A sheet without the check column is still matched on its texts; when Excel turned the
    video id into a number the error says so instead of blaming the key."""
    (tmp_path / "old").mkdir()
    for annotator in ANNOTATORS:
        header, rows = read_table(kit["typed"] / f"{annotator}.csv")
        keep = [h for h in header if h != "check"]
        with open(tmp_path / "old" / f"{annotator}.csv", "w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, keep, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    assert score(tmp_path / "old", kit["key"]) == kit["expected"]
    header, rows = excel_opens_csv(tmp_path / "old" / "annotator_1.csv")
    excel_saves_csv(tmp_path / "old" / "annotator_1.csv", header, rows)
    with pytest.raises(SheetError, match=r"annotator_1.csv: row 2 .*video.* differ\(s\) from the key: "
                                         r"the video id was turned into the number 7E\+18 by a "
                                         r"spreadsheet program"):
        score(tmp_path / "old", kit["key"])


def test_files_of_the_ratings_folder_that_are_not_read_are_named(kit, tmp_path, caplog):
    folder = tmp_path / "ratings"
    folder.mkdir()
    for k, annotator in enumerate(ANNOTATORS):
        name = f"{annotator}.CSV" if k == 0 else f"{annotator}.csv"
        (folder / name).write_bytes((kit["typed"] / f"{annotator}.csv").read_bytes())
    (folder / "notes.txt").write_text("done", encoding="utf-8")
    (folder / "~$annotator_2.xlsx").write_bytes(b"lock")
    with caplog.at_level(logging.WARNING, logger="tiktalk.report.kit.annotation"):
        assert score(folder, kit["key"]) == kit["expected"]              # .CSV is read
    assert "notes.txt (not a sheet (.csv or .xlsx))" in caplog.text
    assert "~$annotator_2.xlsx (the lock file of a sheet open in a spreadsheet program)" in caplog.text

    # a sheet saved in a format the scorer does not read is named where its rows are missed
    (folder / "annotator_2.csv").rename(folder / "annotator_2.ods")
    with pytest.raises(SheetError) as info:
        score(folder, kit["key"])
    assert "no sheet rows for annotator 'annotator_2'" in str(info.value)
    assert "annotator_2.ods (a .ods file, not read: save the sheet as .xlsx or as \"CSV UTF-8\"" \
        in str(info.value)


def test_unreadable_sheets_are_named(kit, tmp_path):
    folder = tmp_path / "ratings"
    folder.mkdir()
    (folder / "annotator_1.xlsx").write_text("not a workbook", encoding="utf-8")
    with pytest.raises(SheetError, match=r"annotator_1.xlsx: not a readable .xlsx workbook"):
        score(folder, kit["key"])
    (folder / "annotator_1.xlsx").unlink()
    (folder / "annotator_1.csv").write_bytes("annotator;item\n李".encode("gb18030"))
    with pytest.raises(SheetError, match=r"annotator_1.csv: not UTF-8 text .*CSV UTF-8"):
        score(folder, kit["key"])
