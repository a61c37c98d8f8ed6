"""Counterfactual feature shards: copies in which chosen videos carry other videos' features.

The demo's wiring check (docs/demo.md) re-runs prediction on such copies: when the test
videos' features are permuted among themselves, every gain a row draws from the frames or the
sound must vanish. If it did not, the gain would come from somewhere else than the right
video's features (a leak through the text, an id, the order of the rows).

:func:`derangement` maps each chosen video to another one (never itself; a single cycle from
Sattolo's algorithm, seeded), so it depends only on the set of ids and the seed: the ResNet /
VGGish shards and the image-encoder shards of one run, permuted separately with the same ids
and seed, move every video's features to the same other video. :func:`permute_feature_shards`
writes the copies with the one shard writer (:func:`tiktalk.media.store.write_feature_shard`):
a video's frame rows and audio rows move together, everything else of the shard (other
videos, ``tokens_per_frame``, ``encoder``) is copied unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from tiktalk.formats import FEATURES_VERSION
from tiktalk.media.store import write_feature_shard

_LAYOUT = ("version", "video_ids", "frame_offsets", "frames", "audio_offsets", "audio")


def derangement(video_ids: Iterable[str], seed: int) -> dict[str, str]:
    """{video_id: the video whose features it gets}: a random cyclic permutation of the
    (sorted, de-duplicated) ids, so no video keeps its own. Needs at least two ids."""
    ids = sorted(set(video_ids))
    if len(ids) < 2:
        raise ValueError(f"a derangement needs at least two videos, got {len(ids)}")
    rng = np.random.default_rng(seed)
    order = list(ids)
    for i in range(len(order) - 1, 0, -1):     # Sattolo: j < i, so one cycle through all
        j = int(rng.integers(0, i))
        order[i], order[j] = order[j], order[i]
    return dict(zip(ids, order))


def _read(path: Path) -> tuple[list[str], list[np.ndarray], list[np.ndarray], dict, int, int]:
    with np.load(path, allow_pickle=False) as z:
        missing = [k for k in _LAYOUT if k not in z]
        if missing:
            raise ValueError(f"{path}: not a feature shard (no {missing})")
        if int(z["version"]) != FEATURES_VERSION:
            raise ValueError(f"{path}: features version {int(z['version'])}, expected {FEATURES_VERSION}")
        ids = [str(v) for v in z["video_ids"]]
        fo, frames, ao, audio = z["frame_offsets"], z["frames"], z["audio_offsets"], z["audio"]
        extra = {k: z[k] for k in z.files if k not in _LAYOUT}
    frame_rows = [frames[fo[i]:fo[i + 1]] for i in range(len(ids))]
    audio_rows = [audio[ao[i]:ao[i + 1]] for i in range(len(ids))]
    frame_dim = int(frames.shape[1]) if frames.ndim == 2 else 0
    audio_dim = int(audio.shape[1]) if audio.ndim == 2 else 0
    return ids, frame_rows, audio_rows, extra, frame_dim, audio_dim


def permute_feature_shards(paths: Sequence[str | os.PathLike], video_ids: Iterable[str],
                           out_dir: str | os.PathLike, seed: int) -> tuple[list[Path], dict[str, str]]:
    """Copies of the feature shards ``paths`` (one kind: all ``*.features.npz`` or all
    ``*.image.npz`` of a run) under ``out_dir`` (same file names) in which each of
    ``video_ids`` carries the features of ``derangement(video_ids, seed)[video_id]``.

    Returns (the copies' paths, in the order of ``paths``; the mapping). Raises ValueError
    naming the ids that no shard holds, or a video held by two shards."""
    paths = [Path(p) for p in paths]
    out_dir = Path(out_dir)
    if any(p.parent.resolve() == out_dir.resolve() for p in paths):
        raise ValueError(f"{out_dir}: the copies must not overwrite their sources")
    mapping = derangement(video_ids, seed)
    shards = [_read(p) for p in paths]
    rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for path, (ids, frames, audio, *_rest) in zip(paths, shards):
        for vid, f, a in zip(ids, frames, audio):
            if vid in rows:
                raise ValueError(f"{path}: video {vid!r} already present in another shard")
            rows[vid] = (f, a)
    missing = sorted(set(mapping) - set(rows))
    if missing:
        raise ValueError(f"{len(missing)} video(s) to permute are in no shard of {len(paths)}, "
                         f"e.g. {missing[:5]}")
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path, (ids, frames, audio, extra, frame_dim, audio_dim) in zip(paths, shards):
        new_frames = [rows[mapping[v]][0] if v in mapping else f for v, f in zip(ids, frames)]
        new_audio = [rows[mapping[v]][1] if v in mapping else a for v, a in zip(ids, audio)]
        out = out_dir / path.name
        write_feature_shard(out, ids, [x.astype(np.float32) for x in new_frames],
                            [x.astype(np.float32) for x in new_audio], frame_dim, audio_dim, extra)
        written.append(out)
    return written, mapping
