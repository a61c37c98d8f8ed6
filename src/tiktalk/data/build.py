"""Data stage: release -> dialogue tables, references, and the sharded video manifest.

Outputs (formats in :mod:`tiktalk.formats`)::

    results/data/{split}.jsonl              canonical dialogue rows
    results/data/{split}_references.jsonl   val/test: {"dialogue_id", "references": [5]}
    results/data/videos.tsv                 video_id, split, shard (id-sorted, sharded)
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, Iterable, Mapping

from tiktalk.data.release import DEFAULT_VIDEO_ID_PATTERN, invalid_video_ids, load_release
from tiktalk.formats import MANIFEST_COLUMNS, N_REFERENCES, SPLITS, shard_name
from tiktalk.io import read_jsonl, write_jsonl, write_text_atomic

DIALOGUE_KEYS = ("dialogue_id", "video_id", "split", "context", "responses")
_SHARD_RE = re.compile(r"^s[0-9]{5}$")


def check_video_ids(ids: Iterable[str], pattern: str = DEFAULT_VIDEO_ID_PATTERN,
                    source: str = "") -> None:
    """Raise ValueError listing every id that does not match ``pattern`` (and ``source``)."""
    bad = invalid_video_ids(ids, pattern)
    if bad:
        where = f"{source}: " if source else ""
        shown = ", ".join(repr(b) for b in bad[:20]) + (" ..." if len(bad) > 20 else "")
        raise ValueError(f"{where}{len(bad)} video id(s) do not match {pattern!r}: {shown}")


# ---- dialogue tables ----------------------------------------------------------------------

def build_split(
    release_path: str | os.PathLike,
    split: str,
    out_dialogues: str | os.PathLike,
    out_references: str | os.PathLike | None = None,
    video_id_pattern: str = DEFAULT_VIDEO_ID_PATTERN,
) -> dict:
    """Write the dialogue table of ``split`` (and for val/test its references table).

    ``out_references`` is required for val/test and must be None for train. Returns
    ``{"split", "n_videos", "n_dialogues"}``. Raises ReleaseError on a malformed release.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    if split == "train" and out_references is not None:
        raise ValueError("train has no references table; pass out_references=None")
    if split != "train" and out_references is None:
        raise ValueError(f"split {split!r} needs out_references (its 5 references per dialogue)")
    rows = load_release(release_path, split, video_id_pattern)
    write_jsonl(out_dialogues, rows)
    if out_references is not None:
        write_jsonl(out_references,
                    ({"dialogue_id": r["dialogue_id"], "references": r["responses"]} for r in rows))
    return {"split": split, "n_videos": len({r["video_id"] for r in rows}), "n_dialogues": len(rows)}


def read_dialogues(path: str | os.PathLike, split: str | None = None) -> list[dict]:
    """Read and check a dialogue table; raise ValueError listing every bad row (file:row)."""
    rows = read_jsonl(path)
    problems: list[str] = []
    seen: set[str] = set()
    for i, row in enumerate(rows, 1):
        where = f"row {i} ({row.get('dialogue_id', '?')})"
        if set(row) != set(DIALOGUE_KEYS):
            problems.append(f"{where}: keys {sorted(row)}, expected {sorted(DIALOGUE_KEYS)}")
            continue
        if row["split"] not in SPLITS or (split is not None and row["split"] != split):
            problems.append(f"{where}: split {row['split']!r}" + (f", expected {split!r}" if split else ""))
        if not isinstance(row["video_id"], str) or not isinstance(row["dialogue_id"], str):
            problems.append(f"{where}: dialogue_id and video_id must be strings")
        elif row["dialogue_id"] in seen:
            problems.append(f"{where}: duplicate dialogue_id")
        else:
            seen.add(row["dialogue_id"])
        ctx, resp = row["context"], row["responses"]
        if not isinstance(ctx, list) or not ctx or not all(isinstance(c, str) for c in ctx):
            problems.append(f"{where}: context must be a non-empty list of strings")
        want = 1 if row["split"] == "train" else N_REFERENCES
        if not isinstance(resp, list) or len(resp) != want or not all(isinstance(r, str) for r in resp):
            problems.append(f"{where}: responses must be a list of {want} string(s)")
    if problems:
        raise ValueError(f"{path}: {len(problems)} bad dialogue row(s):\n  " + "\n  ".join(problems[:50]))
    return rows


# ---- video manifest -----------------------------------------------------------------------

def manifest_from_ids(
    ids: Iterable[str],
    split_of: Mapping[str, str] | Callable[[str], str],
    shard_size: int,
) -> list[tuple[str, str, str]]:
    """Manifest rows ``(video_id, split, shard)``: ids sorted, ``shard_size`` per shard.

    ``split_of`` maps (or is called on) each id. Duplicate ids raise ValueError naming them.
    """
    if not isinstance(shard_size, int) or shard_size < 1:
        raise ValueError(f"shard_size must be a positive integer, got {shard_size!r}")
    ordered = sorted(ids)
    dups = sorted({a for a, b in zip(ordered, ordered[1:]) if a == b})
    if dups:
        raise ValueError(f"{len(dups)} duplicate video id(s): {', '.join(dups[:20])}")
    lookup = split_of.__getitem__ if isinstance(split_of, Mapping) else split_of
    rows = []
    for i, vid in enumerate(ordered):
        split = lookup(vid)
        if split not in SPLITS:
            raise ValueError(f"video {vid!r}: unknown split {split!r}")
        rows.append((vid, split, shard_name(i // shard_size)))
    return rows


def write_manifest(rows: Iterable[tuple[str, str, str]], out_tsv: str | os.PathLike) -> int:
    """Write manifest rows as TSV with a header (formats.MANIFEST_COLUMNS); returns the count."""
    lines = ["\t".join(MANIFEST_COLUMNS)]
    for row in rows:
        if any(("\t" in f or "\n" in f) for f in row):
            raise ValueError(f"manifest field with a tab or newline: {row!r}")
        lines.append("\t".join(row))
    write_text_atomic(out_tsv, "\n".join(lines) + "\n")
    return len(lines) - 1


def build_manifest(
    dialogue_paths: Iterable[str | os.PathLike],
    shard_size: int,
    out_tsv: str | os.PathLike,
    video_id_pattern: str = DEFAULT_VIDEO_ID_PATTERN,
) -> dict:
    """The video manifest over all dialogue tables: one row per distinct video.

    A video id that occurs in two splits is an error naming the id and the splits.
    Returns ``{"n_videos", "n_shards", "per_split": {split: n_videos}}``.
    """
    split_of: dict[str, str] = {}
    clashes: dict[str, set[str]] = {}
    for path in dialogue_paths:
        rows = read_dialogues(path)
        check_video_ids({r["video_id"] for r in rows}, video_id_pattern, source=str(path))
        for row in rows:
            vid, split = row["video_id"], row["split"]
            known = split_of.setdefault(vid, split)
            if known != split:
                clashes.setdefault(vid, {known}).add(split)
    if clashes:
        listed = "; ".join(f"{vid} in {', '.join(sorted(s))}" for vid, s in sorted(clashes.items()))
        raise ValueError(f"{len(clashes)} video id(s) appear in more than one split: {listed}")
    manifest = manifest_from_ids(split_of, split_of, shard_size)
    write_manifest(manifest, out_tsv)
    per_split = {s: 0 for s in SPLITS}
    for _, split, _ in manifest:
        per_split[split] += 1
    return {"n_videos": len(manifest), "n_shards": len({r[2] for r in manifest}),
            "per_split": per_split}


def read_manifest(path: str | os.PathLike) -> list[dict[str, str]]:
    """Read and check a manifest; rows as ``{"video_id", "split", "shard"}`` (all str).

    Checks the header, fields, splits, shard names, that ids are unique and sorted and that
    shards are consecutive (s00000, s00001, ...); raises ValueError naming file and line.
    """
    path = Path(path)
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    if not lines or tuple(lines[0].split("\t")) != MANIFEST_COLUMNS:
        raise ValueError(f"{path}: header must be {chr(9).join(MANIFEST_COLUMNS)!r}")
    rows: list[dict[str, str]] = []
    prev_id, prev_shard = None, -1
    for lineno, line in enumerate(lines[1:], 2):
        fields = line.split("\t")
        if len(fields) != len(MANIFEST_COLUMNS):
            raise ValueError(f"{path}:{lineno}: expected {len(MANIFEST_COLUMNS)} fields, got {len(fields)}")
        vid, split, shard = fields
        if split not in SPLITS:
            raise ValueError(f"{path}:{lineno}: video {vid}: unknown split {split!r}")
        if not _SHARD_RE.match(shard):
            raise ValueError(f"{path}:{lineno}: video {vid}: bad shard name {shard!r}")
        if prev_id is not None and vid <= prev_id:
            raise ValueError(f"{path}:{lineno}: video {vid} is duplicated or out of id order")
        index = int(shard[1:])
        if index not in (prev_shard, prev_shard + 1):
            raise ValueError(f"{path}:{lineno}: video {vid}: shard {shard} does not follow {shard_name(max(prev_shard, 0))}")
        prev_id, prev_shard = vid, index
        rows.append({"video_id": vid, "split": split, "shard": shard})
    return rows


def shards_of(manifest_path: str | os.PathLike) -> list[str]:
    """Sorted distinct shard names of a manifest."""
    return sorted({r["shard"] for r in read_manifest(manifest_path)})


def videos_of_shard(manifest_path: str | os.PathLike, shard: str) -> list[str]:
    """Video ids of ``shard`` in manifest (id) order; KeyError if the shard is not there."""
    ids = [r["video_id"] for r in read_manifest(manifest_path) if r["shard"] == shard]
    if not ids:
        raise KeyError(f"{manifest_path}: no shard {shard!r}")
    return ids
