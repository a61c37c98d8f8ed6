"""The video manifest (``results/data/videos.tsv``): its one writer and its one parser.

One row per distinct video over all splits: ``video_id, split, shard`` (header
:data:`tiktalk.formats.MANIFEST_COLUMNS`), ids sorted, ``shard_size`` consecutive videos per
shard, shard names from :func:`tiktalk.formats.shard_name`. The DAG (shard lists, the videos of
a shard) and the data stage read it with :func:`read_manifest` only.

Layer 1 and cheap to import: the Snakefile parses the manifest at DAG-build time.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable, Iterable, Mapping

from tiktalk.formats import MANIFEST_COLUMNS, SPLITS, shard_name
from tiktalk.io import write_text_atomic

_SHARD_RE = re.compile(r"^s[0-9]{5}$")


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


def shard_videos(manifest_path: str | os.PathLike) -> dict[str, list[str]]:
    """shard -> its video ids in manifest (id) order, shards in order."""
    groups: dict[str, list[str]] = {}
    for row in read_manifest(manifest_path):
        groups.setdefault(row["shard"], []).append(row["video_id"])
    return groups


def shards_of(manifest_path: str | os.PathLike) -> list[str]:
    """Sorted distinct shard names of a manifest."""
    return sorted(shard_videos(manifest_path))


def videos_of_shard(manifest_path: str | os.PathLike, shard: str) -> list[str]:
    """Video ids of ``shard`` in manifest (id) order; KeyError if the shard is not there."""
    try:
        return shard_videos(manifest_path)[shard]
    except KeyError:
        raise KeyError(f"{manifest_path}: no shard {shard!r}") from None
