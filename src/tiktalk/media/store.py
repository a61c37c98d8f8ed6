"""Read-side of the per-shard feature files (format in :mod:`tiktalk.formats`)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from tiktalk.formats import FEATURES_VERSION


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
