"""Memory-mapped read access to the image-encoder shards (BLIP-2's frozen image tokens): the one
reader of that shard kind (its writer: :func:`tiktalk.media.store.write_feature_shard`).

The paper config stores every frame's 257 patch tokens (1408-d, float16): ~0.7 MB a frame,
~28 GB for one frame of each of TikTalk's 38,703 videos. Loading that into every training rank
would not fit, so :class:`ImageTokenIndex` keeps only each shard's small index arrays in memory
and memory-maps its ``frames`` array (an uncompressed ``.npz`` member is one contiguous ``.npy``
inside the zip file): a batch reads just its videos' selected frames, and ranks on one node
share the pages through the OS page cache.

Shard layout: :mod:`tiktalk.formats` (features layout plus ``tokens_per_frame``; a video with F
frames has F * T rows).
"""

from __future__ import annotations

import os
import struct
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np

from tiktalk.formats import FEATURES_VERSION

_LOCAL_HEADER = struct.Struct("<4s5H3I2H")        # zip local file header, 30 bytes


def npz_member_memmap(path: str | os.PathLike, key: str) -> np.ndarray:
    """``np.load(path)[key]`` as a read-only memory map; the member must be stored uncompressed
    (``np.savez``, not ``np.savez_compressed``)."""
    path = Path(path)
    name = f"{key}.npy"
    with zipfile.ZipFile(path) as zf:
        try:
            info = zf.getinfo(name)
        except KeyError:
            raise KeyError(f"{path}: no array {key!r}") from None
    if info.compress_type != zipfile.ZIP_STORED:
        raise ValueError(f"{path}: array {key!r} is compressed and cannot be memory-mapped "
                         f"(write the shard with np.savez, not np.savez_compressed)")
    with open(path, "rb") as fh:
        fh.seek(info.header_offset)
        fields = _LOCAL_HEADER.unpack(fh.read(_LOCAL_HEADER.size))
        if fields[0] != b"PK\x03\x04":
            raise ValueError(f"{path}: bad zip local header for {name}")
        name_len, extra_len = fields[-2], fields[-1]
        fh.seek(info.header_offset + _LOCAL_HEADER.size + name_len + extra_len)
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"{path}: array {key!r} has .npy format {version}, expected 1.0/2.0")
        offset = fh.tell()
    if dtype.hasobject:
        raise ValueError(f"{path}: array {key!r} holds Python objects")
    if int(np.prod(shape)) == 0:
        return np.zeros(shape, dtype)
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape,
                     order="F" if fortran else "C")


class ImageTokenIndex:
    """video_id -> its frames' tokens across image-encoder shards, read on demand."""

    def __init__(self, paths: Sequence[str | os.PathLike]):
        self._where: dict[str, tuple[int, int, int]] = {}   # video -> (shard, first row, n frames)
        self._frames: list[np.ndarray] = []
        self.tokens_per_frame = 0
        self.dim = 0
        for path in paths:
            self._add(Path(path))
        if not self._frames:
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
        if len(offsets) != len(ids) + 1:
            raise ValueError(f"{path}: frame_offsets do not match {len(ids)} video ids")
        frames = npz_member_memmap(path, "frames")
        if frames.ndim != 2:
            raise ValueError(f"{path}: frames must be 2-D (rows, dim), got shape {frames.shape}")
        if self.tokens_per_frame and (t, frames.shape[1]) != (self.tokens_per_frame, self.dim) and frames.shape[0]:
            raise ValueError(f"{path}: {t} tokens of {frames.shape[1]}-d per frame, other shards have "
                             f"{self.tokens_per_frame} of {self.dim}-d")
        if frames.shape[0] or not self.dim:
            self.tokens_per_frame, self.dim = t, int(frames.shape[1])
        shard = len(self._frames)
        self._frames.append(frames)
        for i, vid in enumerate(ids):
            if vid in self._where:
                raise ValueError(f"{path}: video {vid!r} already present in another shard")
            rows = int(offsets[i + 1] - offsets[i])
            if rows % t:
                raise ValueError(f"{path}: video {vid!r} has {rows} rows, not a multiple of {t}")
            self._where[vid] = (shard, int(offsets[i]), rows // t)

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

    def n_frames(self, video_id: str) -> int:
        return self._locate(video_id)[2]

    def frames(self, video_id: str, indices: Sequence[int]) -> np.ndarray:
        """(len(indices), T, D) float32 tokens of the given frames of one video."""
        shard, first, n = self._locate(video_id)
        t, arr = self.tokens_per_frame, self._frames[shard]
        out = np.empty((len(indices), t, self.dim), np.float32)
        for j, f in enumerate(indices):
            if not 0 <= f < n:
                raise IndexError(f"video {video_id!r} has {n} frames, asked for frame {f}")
            out[j] = arr[first + f * t:first + (f + 1) * t]
        return out

    def tokens(self, video_id: str) -> np.ndarray:
        """(F, T, D) float32 tokens of every frame of one video (F = 0 for a video without frames)."""
        return self.frames(video_id, range(self.n_frames(video_id)))
