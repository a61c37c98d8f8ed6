"""Annotation sheets as files, the way spreadsheet programs write and read them.

Reading (:func:`read_table`): a sheet comes back as ``(header, rows)`` of text cells, rows
numbered as a spreadsheet numbers them (the header is row 1; a blank line keeps its number).

* ``.csv``: UTF-8 (with or without BOM). The separator is the one that splits the header row
  into the most columns: ``,``, or ``;`` (Excel in a locale with a decimal comma saves "CSV"
  with semicolons), or a tab. Any other encoding is an error that says how to save it.
* ``.xlsx`` (openpyxl): the first worksheet; numbers as Excel shows them with the "General"
  format for integers (``5``, not ``5.0``), dates in ISO form.

Writing (:func:`write_xlsx`): every cell of the given text columns is stored as text with the
"@" (Text) number format, so opening and saving the workbook in Excel or LibreOffice keeps
each cell as it is (a 19-digit video id stays a string, ``1/2`` stays ``1/2`` and ``+1`` stays
``+1``); the rating columns stay "General" so typed ratings are numbers, and may carry a
whole-number validation.

Which files of a ratings folder are sheets (:func:`sheet_files`): ``*.csv`` and ``*.xlsx`` in
any letter case; everything else (and the lock files that Excel, ``~$name.xlsx``, and
LibreOffice, ``.~lock.name#``, leave beside an open file) is skipped, with the reason.
"""

from __future__ import annotations

import csv
import datetime
import io
import logging
import os
from pathlib import Path
from typing import Mapping, Sequence

log = logging.getLogger(__name__)

SHEET_SUFFIXES = (".csv", ".xlsx")
SEPARATORS = (",", ";", "\t")
_OTHER_SPREADSHEETS = {".xls", ".ods", ".numbers", ".xlsm", ".xlsb", ".tsv"}


class TableError(ValueError):
    """A sheet file that cannot be read; the message names the file and says why."""


def sheet_files(directory: str | os.PathLike) -> tuple[list[Path], dict[str, str]]:
    """(the sheet files of ``directory`` sorted by name, ``{skipped file name: why}``)."""
    root = Path(directory)
    files, skipped = [], {}
    for path in sorted(root.iterdir()) if root.is_dir() else ():
        name, suffix = path.name, path.suffix.lower()
        if path.is_dir():
            skipped[name] = "a folder (sheets are read from the folder itself, not sub-folders)"
        elif name.startswith("~$") or name.startswith(".~lock."):
            skipped[name] = "the lock file of a sheet open in a spreadsheet program"
        elif name.startswith("."):
            skipped[name] = "a hidden file"
        elif suffix in SHEET_SUFFIXES:
            files.append(path)
        elif suffix in _OTHER_SPREADSHEETS:
            skipped[name] = (f"a {suffix} file, not read: save the sheet as .xlsx or as "
                             "\"CSV UTF-8\" (.csv)")
        else:
            skipped[name] = "not a sheet (.csv or .xlsx)"
    return files, skipped


def describe_skipped(skipped: Mapping[str, str]) -> str:
    """One line per skipped file, for messages."""
    return "; ".join(f"{name} ({why})" for name, why in skipped.items())


def read_table(path: str | os.PathLike) -> tuple[list[str], list[dict[str, str]]]:
    """(header, rows) of a ``.csv`` or ``.xlsx`` sheet; a blank row is ``{}`` (it keeps its
    number). Raises :class:`TableError` naming the file."""
    path = Path(path)
    if path.suffix.lower() == ".xlsx":
        records = _xlsx_records(path)
    else:
        records = _csv_records(path)
    if not records:
        raise TableError(f"{path}: empty file, expected a header row")
    header = [h.strip() for h in records[0]]
    rows = []
    for record in records[1:]:
        if not any(cell.strip() for cell in record):
            rows.append({})
            continue
        rows.append(dict(zip(header, record + [""] * (len(header) - len(record)))))
    return header, rows


def separator_of(first_line: str) -> str:
    """The separator that splits a header line into the most columns (``,`` on a tie)."""
    def width(sep):
        return len(next(csv.reader([first_line], delimiter=sep), []))
    return max(SEPARATORS, key=lambda s: (width(s), s == ","))


def _csv_records(path: Path) -> list[list[str]]:
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            text = fh.read()
    except UnicodeDecodeError as exc:
        raise TableError(f"{path}: not UTF-8 text (byte {exc.start}); save the sheet as "
                         "\"CSV UTF-8\" (or as .xlsx)") from None
    sep = separator_of(text.splitlines()[0] if text else "")
    if sep != ",":
        log.info("%s: %r-separated, read as such", path, sep)
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=sep))


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ") if value.time() != datetime.time() else value.date().isoformat()
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return str(value)


def _xlsx_records(path: Path) -> list[list[str]]:
    try:
        import openpyxl
    except ImportError:                                     # pragma: no cover - a pinned dependency
        raise TableError(f"{path}: reading .xlsx needs openpyxl; or save the sheet as "
                         "\"CSV UTF-8\"") from None
    from zipfile import BadZipFile

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (BadZipFile, OSError, KeyError, ValueError) as exc:
        raise TableError(f"{path}: not a readable .xlsx workbook ({exc})") from None
    try:
        if not book.worksheets:
            return []
        return [[_cell_text(v) for v in row] for row in book.worksheets[0].iter_rows(values_only=True)]
    finally:
        book.close()


def write_xlsx(path: str | os.PathLike, columns: Sequence[str], rows: Sequence[Mapping[str, str]],
               *, number_columns: Sequence[str] = (), whole_range: tuple[int, int] | None = None,
               title: str = "sheet") -> None:
    """A workbook with one worksheet: a header row, then ``rows``. Every column but
    ``number_columns`` is text ("@"); ``whole_range`` (low, high) adds a whole-number
    validation to the ``number_columns``. Written atomically."""
    import openpyxl
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    from tiktalk.io import atomic_path

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = title
    sheet.append(list(columns))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    wrap = Alignment(wrap_text=True, vertical="top")
    for r, row in enumerate(rows, 2):
        for c, name in enumerate(columns, 1):
            value = str(row.get(name, ""))
            cell = sheet.cell(row=r, column=c)
            if name in number_columns:
                cell.value = int(value) if value.strip().lstrip("-").isdigit() else (value or None)
                continue
            cell.value = value
            cell.data_type = "s"            # never a formula, whatever the text starts with
            cell.number_format = "@"
            if "\n" in value:
                cell.alignment = wrap
    for c, name in enumerate(columns, 1):
        letter = get_column_letter(c)
        widest = max([len(name)] + [max((len(line) for line in str(row.get(name, "")).split("\n")),
                                         default=0) for row in rows])
        sheet.column_dimensions[letter].width = min(60, max(6, widest + 2))
    if whole_range is not None and number_columns and rows:
        low, high = whole_range
        check = DataValidation(type="whole", operator="between", formula1=str(low),
                               formula2=str(high), showErrorMessage=True,
                               error=f"a whole number from {low} to {high}")
        for c, name in enumerate(columns, 1):
            if name in number_columns:
                letter = get_column_letter(c)
                check.add(f"{letter}2:{letter}{len(rows) + 1}")
        sheet.add_data_validation(check)
    sheet.freeze_panes = "A2"
    with atomic_path(path) as tmp:
        book.save(tmp)
