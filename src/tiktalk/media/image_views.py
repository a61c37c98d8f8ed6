"""Which frames represent a video for the BLIP-2 rows, and the views a shard stores.

Used by the extraction (:mod:`tiktalk.media.encoders`: a shard stores each video's views, the
token sets the config's BLIP-2 rows read) and by the reader (:mod:`tiktalk.media.image_tokens`,
which selects frames at read time from a ``frames`` store). Two views (``MODES``):

* ``img``: the tokens of one frame drawn with a generator seeded by (config ``seed``, video id),
  the same frame in every epoch and in decoding;
* ``video``: the mean of the tokens of ``n_frames`` uniformly spaced frames.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

MODES = ("img", "video")          # the BLIP-2 rows' ways to represent a video (a view each)


def frame_seed(seed: int, video_id: str) -> int:
    """A per-video seed that is stable across processes (no PYTHONHASHSEED dependence)."""
    h = hashlib.sha256(f"{seed}:{video_id}".encode()).digest()
    return int.from_bytes(h[:8], "little")


def frame_indices(n: int, mode: str, n_frames: int, seed: int, video_id: str) -> list[int]:
    """The frames (of ``n``) that represent one video; empty when it has none.

    ``img``: one frame drawn with a generator seeded by (seed, video_id), so the same frame is
    used in every epoch and in decoding; ``video``: ``n_frames`` uniformly spaced frames, whose
    tokens are averaged (all frames when ``n <= n_frames``).
    """
    if n == 0:
        return []
    if mode == "img":
        return [int(np.random.default_rng(frame_seed(seed, video_id)).integers(n))]
    if mode == "video":
        if n <= n_frames:
            return list(range(n))
        return [int(i) for i in np.linspace(0, n - 1, n_frames).round().astype(int)]
    raise ValueError(f"unknown mode {mode!r}")


def select_frames(frames: np.ndarray, mode: str, n_frames: int, seed: int, video_id: str
                  ) -> np.ndarray | None:
    """(T, D) tokens of one video from its (F, T, D) frames, or None when it has no frames."""
    idx = frame_indices(frames.shape[0], mode, n_frames, seed, video_id)
    if not idx:
        return None
    return frames[idx].mean(axis=0) if mode == "video" else frames[idx[0]]


def video_views(frames: np.ndarray, n_frames: int, seed: int, video_id: str,
                views: Sequence[str] = MODES) -> np.ndarray:
    """The ``views`` rows of one video: (len(views) * T, D), view after view, from its (F, T, D)
    frame tokens; (0, D) for a video without frames. The mean is taken in float32 before the
    shard stores float16."""
    if frames.shape[0] == 0:
        return np.zeros((0, frames.shape[-1]), np.float32)
    out = [select_frames(np.asarray(frames, np.float32), m, n_frames, seed, video_id) for m in views]
    return np.concatenate(out, 0)


def views_of(modes) -> tuple[str, ...]:
    """The views a shard stores for rows of these modes, in :data:`MODES` order."""
    unknown = set(modes) - set(MODES)
    if unknown:
        raise ValueError(f"unknown BLIP-2 mode(s) {sorted(unknown)}, expected {MODES}")
    return tuple(m for m in MODES if m in set(modes))
