"""Simulated annotators for the annotation kits (tests only; also usable by whole-DAG tests).

They read the blank sheets with the standard ``csv`` module, resolve each slot to its system
through the key (the simulator plays an oracle that knows which system wrote what), and write
filled copies under the same file names. The package's readers are not used here, so a test
that scores these files checks the package against an independent writer.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Callable


def read_blank(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames), list(reader)


def write_filled(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)


def fill_sheets(sheets_dir: Path, key_path: Path, out_dir: Path,
                rate: Callable[[str, str, str, str], object]) -> dict[tuple[str, str, str, str], object]:
    """Fill every ``{annotator}.csv`` of ``sheets_dir``: cell (row, field) gets
    ``rate(annotator, item, system, field)``; returns every value given, keyed like that."""
    key = json.loads(Path(key_path).read_text(encoding="utf-8"))
    given = {}
    for annotator in key["annotators"]:
        header, rows = read_blank(Path(sheets_dir) / f"{annotator}.csv")
        for row in rows:
            system = key["slots"][annotator][row["item"]][row["slot"]]
            for field in key["fields"]:
                value = rate(annotator, row["item"], system, field)
                given[(annotator, row["item"], system, field)] = value
                row[field] = "" if value is None else str(value)
        write_filled(Path(out_dir) / f"{annotator}.csv", header, rows)
    return given


def offset_rater(base: Callable[[str, str, str], int], annotators: list[str],
                 offsets: tuple[int, ...] = (-1, 0, 1)) -> Callable[[str, str, str, str], int]:
    """Ratings ``base(item, system, criterion) + offset``, the offsets rotated over the
    annotators per (item, system, criterion): with as many annotators as offsets, the mean over
    annotators is exactly ``base + mean(offsets)``, yet the annotators disagree."""
    def rate(annotator, item, system, criterion):
        salt = sum(map(ord, f"{item}/{system}/{criterion}"))
        k = (annotators.index(annotator) + salt) % len(offsets)
        return base(item, system, criterion) + offsets[k]
    return rate
