"""Read access to the image-encoder shards (BLIP-2's frozen image tokens), the one reader of
that shard kind (its writer: :func:`tiktalk.media.store.write_feature_shard`), and which frames
represent a video for the BLIP-2 rows (:mod:`tiktalk.media.image_views`).

Two layouts (:mod:`tiktalk.formats`, "Image features"):

* ``views`` (the default, ``media.image_encoder.store: views``): per video exactly what the
  config's BLIP-2 rows read, one (T, D) token set per view: ``img``, the tokens of one frame
  drawn with a generator seeded by (config ``seed``, video id), and ``video``, the mean of the
  tokens of ``n_frames`` uniformly spaced frames (:func:`video_views`); only the views of the
  rows the config has. For the release (257 tokens of 1408-d, float16) that is 0.72 MB a view,
  28 GB a row, 56 GB for both, and a training epoch reads 0.72 MB a training example (a
  video's view is read once per example).
* ``frames``: every encoded frame's tokens (F * T rows a video; 8 frames at the paper's
  settings: 5.8 MB a video, 224 GB for the release, 2.1 TB read per BLIP-2_Video epoch). Kept
  for analyses that need single frames; the BLIP-2 rows select their frames at read time.

:class:`ImageTokenIndex` keeps only each shard's small index arrays in memory and reads a
video's rows with ``os.pread`` (:class:`tiktalk.media.store.NpzRows`): DDP ranks on one node
share the file pages through the OS page cache, and nothing grows with the number of videos.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from tiktalk.formats import FEATURES_VERSION
from tiktalk.media.image_views import MODES, frame_indices, views_of
from tiktalk.media.store import NpzRows


class ImageTokenIndex:
    """video_id -> its tokens across image-encoder shards, read on demand."""

    def __init__(self, paths: Sequence[str | os.PathLike]):
        self._where: dict[str, tuple[int, int, int]] = {}   # video -> (shard, first row, n blocks)
        self._rows: list[NpzRows] = []
        self.tokens_per_frame = 0
        self.dim = 0
        self.layout: str | None = None          # "views" | "frames"
        self.view_frames: int | None = None     # views: the frames averaged into ``video``
        self.view_seed: int | None = None       # views: the seed of the ``img`` frame
        self.views: tuple[str, ...] = ()        # views: which, in order
        for path in paths:
            self._add(Path(path))
        if not self._rows:
            raise ValueError("no image-encoder shard given")

    def _add(self, path: Path) -> None:
        with np.load(path, allow_pickle=False) as z:
            if "tokens_per_frame" not in z:
                raise ValueError(f"{path}: not an image-encoder feature shard (no tokens_per_frame)")
            version = int(z["version"])
            if version != FEATURES_VERSION:
                raise ValueError(f"{path}: features version {version}, expected {FEATURES_VERSION}")
            t = int(z["tokens_per_frame"])
            ids = [str(v) for v in z["video_ids"]]
            offsets = np.asarray(z["frame_offsets"], dtype=np.int64)
            if "views" in z:
                views = tuple(str(v) for v in z["views"])
                layout = ("views", int(z["view_frames"]), int(z["view_seed"]), views)
                if not views or views != views_of(views):
                    raise ValueError(f"{path}: views {list(views)}, expected some of {list(MODES)} in that order")
            else:
                layout = ("frames", None, None, ())
        if self.layout is not None and layout != (self.layout, self.view_frames, self.view_seed, self.views):
            raise ValueError(f"{path}: layout {layout} differs from the other shards' "
                             f"{(self.layout, self.view_frames, self.view_seed, self.views)}")
        self.layout, self.view_frames, self.view_seed, self.views = layout
        if len(offsets) != len(ids) + 1:
            raise ValueError(f"{path}: frame_offsets do not match {len(ids)} video ids")
        rows = NpzRows(path, "frames")
        if self.tokens_per_frame and (t, rows.shape[1]) != (self.tokens_per_frame, self.dim) and rows.shape[0]:
            raise ValueError(f"{path}: {t} tokens of {rows.shape[1]}-d per frame, other shards have "
                             f"{self.tokens_per_frame} of {self.dim}-d")
        if rows.shape[0] or not self.dim:
            self.tokens_per_frame, self.dim = t, int(rows.shape[1])
        shard = len(self._rows)
        self._rows.append(rows)
        for i, vid in enumerate(ids):
            if vid in self._where:
                raise ValueError(f"{path}: video {vid!r} already present in another shard")
            n = int(offsets[i + 1] - offsets[i])
            if n % t:
                raise ValueError(f"{path}: video {vid!r} has {n} rows, not a multiple of {t}")
            if self.layout == "views" and n not in (0, len(self.views) * t):
                raise ValueError(f"{path}: video {vid!r} has {n // t} views, expected {len(self.views)}")
            self._where[vid] = (shard, int(offsets[i]), n // t)

    def __contains__(self, video_id: str) -> bool:
        return video_id in self._where

    def __len__(self) -> int:
        return len(self._where)

    @property
    def video_ids(self) -> list[str]:
        """Every video of the shards, in shard order."""
        return list(self._where)

    def _locate(self, video_id: str) -> tuple[int, int, int]:
        try:
            return self._where[video_id]
        except KeyError:
            raise KeyError(f"video {video_id!r} is in no image-feature shard") from None

    def _blocks(self, video_id: str, indices: Sequence[int]) -> np.ndarray:
        shard, first, n = self._locate(video_id)
        t, rows = self.tokens_per_frame, self._rows[shard]
        out = np.empty((len(indices), t, self.dim), np.float32)
        for j, f in enumerate(indices):
            if not 0 <= f < n:
                raise IndexError(f"video {video_id!r} has {n} token blocks, asked for block {f}")
            out[j] = rows.read(first + f * t, first + (f + 1) * t)
        return out

    def n_frames(self, video_id: str) -> int:
        """Frames stored for the video (``frames`` layout; a ``views`` shard stores views)."""
        self._require("frames")
        return self._locate(video_id)[2]

    def frames(self, video_id: str, indices: Sequence[int]) -> np.ndarray:
        """(len(indices), T, D) float32 tokens of the given frames of one video."""
        self._require("frames")
        return self._blocks(video_id, indices)

    def tokens(self, video_id: str) -> np.ndarray:
        """(F, T, D) float32 tokens of every frame of one video (F = 0 for a video without frames)."""
        return self.frames(video_id, range(self.n_frames(video_id)))

    def _require(self, layout: str) -> None:
        if self.layout != layout:
            raise ValueError(f"the image shards store {self.layout}, not {layout} "
                             f"(media.image_encoder.store)")

    def video_tokens(self, video_id: str, mode: str, n_frames: int, seed: int) -> np.ndarray | None:
        """(T, D) float32 tokens that represent one video for a BLIP-2 row (``mode`` img or
        video, its ``n_frames``, the run's ``seed``); None for a video without frames. A
        ``views`` shard must have been written with the same ``n_frames`` and ``seed``."""
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}, expected one of {MODES}")
        if self.layout == "frames":
            idx = frame_indices(self.n_frames(video_id), mode, n_frames, seed, video_id)
            if not idx:
                return None
            frames = self.frames(video_id, idx)
            return frames.mean(axis=0) if mode == "video" else frames[0]
        if (n_frames, seed) != (self.view_frames, self.view_seed):
            raise ValueError(f"the image shards hold views of {self.view_frames} frames with seed "
                             f"{self.view_seed}, the row asks for {n_frames} frames with seed {seed}: "
                             f"set the row's n_frames to media.image_encoder.n_frames (or re-extract)")
        if mode not in self.views:
            raise ValueError(f"the image shards hold the views {list(self.views)}, not {mode!r}: "
                             f"re-extract with a {mode} row in the config")
        if self._locate(video_id)[2] == 0:
            return None
        return self._blocks(video_id, [self.views.index(mode)])[0]
