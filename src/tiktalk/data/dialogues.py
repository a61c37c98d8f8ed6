"""The dialogue table (``results/data/{split}.jsonl``): its one reader and its one writer.

The format is documented in :mod:`tiktalk.formats` ("Dialogue table"). Every stage that reads a
dialogue table (the video manifest, knowledge retrieval, the baselines) reads it with
:func:`read_dialogues`, so a malformed row fails the same way everywhere, naming the file, the
row and the dialogue.
"""

from __future__ import annotations

import os
from typing import Iterable

from tiktalk.formats import N_REFERENCES, SPLITS
from tiktalk.io import read_jsonl, write_jsonl

DIALOGUE_KEYS = ("dialogue_id", "video_id", "split", "context", "responses")
_SHOW = 50  # problems listed in one error message


def _row_problems(row: dict, split: str | None, seen: set[str]) -> list[str]:
    if set(row) != set(DIALOGUE_KEYS):
        return [f"keys {sorted(row)}, expected {sorted(DIALOGUE_KEYS)}"]
    problems = []
    if row["split"] not in SPLITS or (split is not None and row["split"] != split):
        problems.append(f"split {row['split']!r}" + (f", expected {split!r}" if split else ""))
    if not isinstance(row["video_id"], str) or not isinstance(row["dialogue_id"], str):
        problems.append("dialogue_id and video_id must be strings")
    elif row["dialogue_id"] in seen:
        problems.append("duplicate dialogue_id")
    else:
        seen.add(row["dialogue_id"])
    ctx, resp = row["context"], row["responses"]
    if not isinstance(ctx, list) or not ctx or not all(isinstance(c, str) for c in ctx):
        problems.append("context must be a non-empty list of strings")
    want = 1 if row["split"] == "train" else N_REFERENCES
    if not isinstance(resp, list) or len(resp) != want or not all(isinstance(r, str) for r in resp):
        problems.append(f"responses must be a list of {want} string(s)")
    return problems


def read_dialogues(path: str | os.PathLike, split: str | None = None) -> list[dict]:
    """The rows of a dialogue table, checked; ``split`` (optional) is the split every row must
    have. Raises ValueError listing every bad row as ``row N (dialogue id): problem``."""
    rows = read_jsonl(path)
    problems: list[str] = []
    seen: set[str] = set()
    for i, row in enumerate(rows, 1):
        where = f"row {i} ({row.get('dialogue_id', '?')})"
        problems.extend(f"{where}: {p}" for p in _row_problems(row, split, seen))
    if problems:
        raise ValueError(f"{path}: {len(problems)} bad dialogue row(s):\n  "
                         + "\n  ".join(problems[:_SHOW]))
    return rows


def write_dialogues(path: str | os.PathLike, rows: Iterable[dict]) -> int:
    """Write dialogue rows (as :func:`read_dialogues` returns them) atomically; the count."""
    return write_jsonl(path, ({k: row[k] for k in DIALOGUE_KEYS} for row in rows))
