"""The per-shard feature files (format in :mod:`tiktalk.formats`): the one writer
(:func:`write_feature_shard`, for both kinds: ResNet/VGGish features and image-encoder tokens)
and the reader of the ResNet/VGGish shards (:class:`FeatureStore`, whole shards in memory: they are
small). The image-feature shards have their own, memory-mapped reader
(:class:`tiktalk.media.image_tokens.ImageTokenIndex`): BLIP-2's patch tokens do not fit in memory.

NumPy only (no torch): the trainings that read features import nothing else of the media stage.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from tiktalk.formats import FEATURES_VERSION
from tiktalk.io import atomic_path

log = logging.getLogger(__name__)

F16_MAX = float(np.finfo(np.float16).max)


def to_float16(a: np.ndarray, name: str) -> np.ndarray:
    """float16 for disk; non-finite model outputs are an error, values beyond the float16 range
    are clipped with a warning (never written as inf)."""
    if a.size and not np.isfinite(a).all():
        raise ValueError(f"{name} features contain NaN/inf: the model is broken")
    big = int(np.count_nonzero(np.abs(a) > F16_MAX))
    if big:
        log.warning("%d %s feature values beyond the float16 range were clipped", big, name)
        a = np.clip(a, -F16_MAX, F16_MAX)
    return a.astype(np.float16)


def _rows(parts: Sequence[np.ndarray], dim: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(parts) + 1, np.int64)
    for i, p in enumerate(parts):
        offsets[i + 1] = offsets[i] + len(p)
    rows = to_float16(np.concatenate(parts) if parts else np.zeros((0, dim)), name)
    if rows.ndim != 2:
        rows = rows.reshape(0, dim)
    return offsets, rows


def write_feature_shard(path: str | os.PathLike, video_ids: Sequence[str],
                        frames: Sequence[np.ndarray], audio: Sequence[np.ndarray] | None,
                        frame_dim: int, audio_dim: int, extra: Mapping[str, np.ndarray] | None = None) -> None:
    """Write one feature shard atomically: ``frames[i]`` / ``audio[i]`` are the (rows, dim)
    arrays of ``video_ids[i]`` (zero rows for a failed video). ``audio=None``: no audio rows
    (the image-feature shards). ``extra``: further keys (``tokens_per_frame``, ``encoder``)."""
    if len(frames) != len(video_ids) or (audio is not None and len(audio) != len(video_ids)):
        raise ValueError(f"{path}: {len(video_ids)} video ids but {len(frames)} frame arrays")
    if audio is None:
        audio = [np.zeros((0, audio_dim), np.float32)] * len(video_ids)
    fo, frame_rows = _rows(frames, frame_dim, "frames")
    ao, audio_rows = _rows(audio, audio_dim, "audio")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, version=np.int64(FEATURES_VERSION),
                     video_ids=np.asarray(video_ids, dtype=str) if len(video_ids) else np.zeros((0,), dtype="<U1"),
                     frame_offsets=fo, frames=frame_rows, audio_offsets=ao, audio=audio_rows,
                     **dict(extra or {}))


class FeatureStore:
    """Maps video_id -> (frames, audio) feature arrays across all shard ``.npz`` files.

    Arrays are returned as float32. A video that failed extraction, or that has no audio
    stream, returns an array with zero rows: callers mask it, never drop the dialogue.
    Asking for a video that no shard holds raises KeyError naming it.
    """

    def __init__(self, paths: Iterable[str | Path]):
        self._frames: dict[str, np.ndarray] = {}
        self._audio: dict[str, np.ndarray] = {}
        self.visual_dim = 0
        self.audio_dim = 0
        for path in paths:
            self._load(Path(path))

    def _load(self, path: Path) -> None:
        with np.load(path, allow_pickle=False) as z:
            version = int(z["version"])
            if version != FEATURES_VERSION:
                raise ValueError(f"{path}: features version {version}, expected {FEATURES_VERSION}")
            ids = [str(v) for v in z["video_ids"]]
            fo, frames = z["frame_offsets"], z["frames"]
            ao, audio = z["audio_offsets"], z["audio"]
            if len(fo) != len(ids) + 1 or len(ao) != len(ids) + 1:
                raise ValueError(f"{path}: offsets do not match {len(ids)} video ids")
            if frames.ndim == 2 and frames.shape[1]:
                self.visual_dim = int(frames.shape[1])
            if audio.ndim == 2 and audio.shape[1]:
                self.audio_dim = int(audio.shape[1])
            for i, vid in enumerate(ids):
                if vid in self._frames:
                    raise ValueError(f"{path}: video {vid!r} already present in another shard")
                self._frames[vid] = np.asarray(frames[fo[i]:fo[i + 1]], dtype=np.float32)
                self._audio[vid] = np.asarray(audio[ao[i]:ao[i + 1]], dtype=np.float32)

    def __contains__(self, video_id: str) -> bool:
        return video_id in self._frames

    def __len__(self) -> int:
        return len(self._frames)

    def _get(self, table: dict[str, np.ndarray], video_id: str) -> np.ndarray:
        try:
            return table[video_id]
        except KeyError:
            raise KeyError(f"video {video_id!r} is in no feature shard") from None

    def frames(self, video_id: str) -> np.ndarray:
        return self._get(self._frames, video_id)

    def audio(self, video_id: str) -> np.ndarray:
        return self._get(self._audio, video_id)
