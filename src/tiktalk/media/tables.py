"""The media stage's two tables (formats in :mod:`tiktalk.formats`): the fetch table
(``{shard}/fetch.tsv``, :data:`~tiktalk.formats.FETCH_COLUMNS`) and the media status table
(``{shard}.status.tsv``, :data:`~tiktalk.formats.STATUS_COLUMNS`). One writer and one reader
for each; both are written atomically, and a reader that meets another header (another
version) fails naming the file and the version it expected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping, Sequence

from tiktalk.formats import FETCH_COLUMNS, FETCH_VERSION, STATUS_COLUMNS, STATUS_VERSION
from tiktalk.io import atomic_path


def _clean(value: object) -> str:
    if value is None:
        return ""
    return " ".join(str(value).replace("\t", " ").splitlines()).strip()


def write_tsv(path: str | Path, columns: Sequence[str], rows: Iterable[Mapping]) -> None:
    """Atomic tab-separated table with a header; tabs/newlines inside values become spaces."""
    lines = ["\t".join(columns)]
    for row in rows:
        lines.append("\t".join(_clean(row.get(c, "")) for c in columns))
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_tsv(path: str | Path, columns: Sequence[str], what: str = "table") -> list[dict]:
    """Read a table written by :func:`write_tsv`; a wrong header or row raises ValueError."""
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    if not lines or tuple(lines[0].split("\t")) != tuple(columns):
        raise ValueError(f"{path}: not a {what}: expected header {list(columns)}, got {lines[:1]}")
    rows = []
    for lineno, line in enumerate(lines[1:], 2):
        if not line:
            continue
        parts = line.split("\t")
        if len(parts) != len(columns):
            raise ValueError(f"{path}:{lineno}: {len(parts)} fields, expected {len(columns)}")
        rows.append(dict(zip(columns, parts)))
    return rows


def write_fetch(path: str | Path, rows: Iterable[Mapping]) -> None:
    write_tsv(path, FETCH_COLUMNS, rows)


def read_fetch(path: str | Path) -> list[dict]:
    return read_tsv(path, FETCH_COLUMNS, f"fetch table (version {FETCH_VERSION})")


def write_status(path: str | Path, rows: Iterable[Mapping]) -> None:
    write_tsv(path, STATUS_COLUMNS, rows)


def read_status(path: str | Path) -> list[dict]:
    return read_tsv(path, STATUS_COLUMNS, f"media status table (version {STATUS_VERSION}; "
                                           f"re-run the media stage if it is older)")


def status_row(video_id: str, reason: str, n_frames: int = 0, n_audio: int = 0,
               duration: float | None = None, decoded_s: float | None = None,
               notes: Sequence[str] = ()) -> dict:
    """One status row: failed when ``reason`` is given, ok otherwise."""
    return {"video_id": video_id, "status": "failed" if reason else "ok", "reason": reason,
            "n_frames": n_frames, "n_audio_frames": n_audio,
            "duration": "" if duration is None else f"{duration:.3f}",
            "decoded_s": "" if decoded_s is None else f"{decoded_s:.3f}",
            "notes": "; ".join(notes)}
