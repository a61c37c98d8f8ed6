"""Data stage: release -> dialogue tables, references, and the sharded video manifest.

Outputs (formats in :mod:`tiktalk.formats`)::

    results/data/{split}.jsonl              canonical dialogue rows (:mod:`.dialogues`)
    results/data/{split}_references.jsonl   val/test: {"dialogue_id", "references": [5]}
    results/data/videos.tsv                 video_id, split, shard (:mod:`.manifest`)
"""

from __future__ import annotations

import os
from typing import Iterable, Mapping

from tiktalk.data.dialogues import read_dialogues, write_dialogues
from tiktalk.data.manifest import manifest_from_ids, write_manifest
from tiktalk.data.release import (DEFAULT_VIDEO_ID_PATTERN, ReleaseFields, ValCarving,
                                  invalid_video_ids, release_rows)
from tiktalk.formats import SPLITS
from tiktalk.io import write_json, write_jsonl


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
    fields: Mapping | None = None,
    val_from_train: Mapping | None = None,
    out_report: str | os.PathLike | None = None,
) -> dict:
    """Write the dialogue table of ``split`` (and for val/test its references table).

    ``out_references`` is required for val/test and must be None for train. ``fields``: the
    release's field names (config ``release.fields``); ``val_from_train`` (a mapping, possibly
    empty, when the release has no val.json): ``release_path`` is train.json and val is carved
    from it (:func:`tiktalk.data.release.carve_val`). ``out_report``: the release report
    (fields read and ignored, the carving). Returns ``{"split", "n_videos", "n_dialogues"}``.
    Raises ReleaseError on a malformed release.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    if split == "train" and out_references is not None:
        raise ValueError("train has no references table; pass out_references=None")
    if split != "train" and out_references is None:
        raise ValueError(f"split {split!r} needs out_references (its 5 references per dialogue)")
    carving = None if val_from_train is None else ValCarving.from_config(val_from_train)
    rows, report = release_rows(release_path, split, video_id_pattern,
                                ReleaseFields.from_config(fields), carving)
    write_dialogues(out_dialogues, rows)
    if out_report is not None:
        write_json(out_report, report)
    if out_references is not None:
        write_jsonl(out_references,
                    ({"dialogue_id": r["dialogue_id"], "references": r["responses"]} for r in rows))
    return {"split": split, "n_videos": len({r["video_id"] for r in rows}), "n_dialogues": len(rows)}


# ---- video manifest -----------------------------------------------------------------------

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
