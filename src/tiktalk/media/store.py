"""The per-shard feature files (format in :mod:`tiktalk.formats`): the one writer
(:func:`write_feature_shard`, for both kinds: ResNet/VGGish features and image-encoder tokens),
the positioned-read access to an uncompressed ``.npz`` member (:class:`NpzRows`) and the reader
of the ResNet/VGGish shards (:class:`FeatureStore`). The image-feature shards have their own
reader on the same access (:class:`tiktalk.media.image_tokens.ImageTokenIndex`).

Sized for the release: 38,703 videos of 50 ResNet-101 frames (2048-d) and up to 180 VGGish
frames (128-d) are ~8 GB of float16 on disk, ~16 GB as float32. A reader keeps only each shard's
index arrays in memory (a few bytes a video) and reads one video's rows with ``os.pread`` when
asked: a training job's memory does not grow with the number of videos, DDP ranks on one node
share the file pages through the OS page cache, and, unlike a memory map, the pages read are
not counted in the job's resident set (SLURM and Snakemake's ``max_rss`` would otherwise charge
every page a training touched to it).

NumPy only (no torch): the trainings that read features import nothing else of the media stage.
"""

from __future__ import annotations

import logging
import os
import struct
import zipfile
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from tiktalk.formats import FEATURES_VERSION
from tiktalk.io import atomic_path

log = logging.getLogger(__name__)

F16_MAX = float(np.finfo(np.float16).max)
_LOCAL_HEADER = struct.Struct("<4s5H3I2H")        # zip local file header, 30 bytes


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


class NpzRows:
    """Rows of one 2-D array stored uncompressed in a ``.npz`` file (``np.savez``), read with
    ``os.pread`` at its byte offset: no memory map, no copy of the whole array.

    The file is opened on first use in each process (a DataLoader worker or DDP rank opens its
    own descriptor), so an instance can be pickled and handed to worker processes.
    """

    def __init__(self, path: str | os.PathLike, key: str):
        self.path = Path(path)
        self.key = key
        self.offset, self.shape, self.dtype = npz_member_layout(self.path, key)
        if len(self.shape) != 2:
            raise ValueError(f"{self.path}: array {key!r} must be 2-D (rows, dim), got shape {self.shape}")
        self._row_bytes = int(self.shape[1]) * self.dtype.itemsize
        self._fd: int | None = None
        self._pid: int | None = None

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_fd"] = state["_pid"] = None
        return state

    def _descriptor(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        return self._fd

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` as a new (stop - start, dim) array of the stored dtype."""
        if not 0 <= start <= stop <= self.shape[0]:
            raise IndexError(f"{self.path}: rows {start}:{stop} of {self.shape[0]} in {self.key!r}")
        n = (stop - start) * self._row_bytes
        if n == 0:
            return np.zeros((0, self.shape[1]), self.dtype)
        buf = os.pread(self._descriptor(), n, self.offset + start * self._row_bytes)
        if len(buf) != n:
            raise OSError(f"{self.path}: short read of {self.key!r} rows {start}:{stop} (file truncated?)")
        return np.frombuffer(buf, self.dtype).reshape(stop - start, self.shape[1])

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = self._pid = None

    def __del__(self):  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass


def npz_member_layout(path: str | os.PathLike, key: str) -> tuple[int, tuple[int, ...], np.dtype]:
    """(byte offset of the data, shape, dtype) of ``np.load(path)[key]``; the member must be
    stored uncompressed (``np.savez``, not ``np.savez_compressed``) in C order."""
    path = Path(path)
    name = f"{key}.npy"
    with zipfile.ZipFile(path) as zf:
        try:
            info = zf.getinfo(name)
        except KeyError:
            raise KeyError(f"{path}: no array {key!r}") from None
    if info.compress_type != zipfile.ZIP_STORED:
        raise ValueError(f"{path}: array {key!r} is compressed and cannot be read in place "
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
    if fortran and len(shape) > 1 and min(shape) > 1:
        raise ValueError(f"{path}: array {key!r} is stored in Fortran order")
    return offset, tuple(int(d) for d in shape), dtype


class FeatureStore:
    """Maps video_id -> (frames, audio) feature arrays across all shard ``.npz`` files.

    Only the shards' index arrays live in memory; each call reads that video's rows from disk
    (:class:`NpzRows`). Arrays are returned as new float32 arrays. A video that failed
    extraction, or that has no audio stream, returns an array with zero rows: callers mask it,
    never drop the dialogue. Asking for a video that no shard holds raises KeyError naming it.
    """

    def __init__(self, paths: Iterable[str | Path]):
        # video -> (shard, first frame row, end frame row, first audio row, end audio row)
        self._where: dict[str, tuple[int, int, int, int, int]] = {}
        self._frames: list[NpzRows] = []
        self._audio: list[NpzRows] = []
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
            fo = np.asarray(z["frame_offsets"], np.int64)
            ao = np.asarray(z["audio_offsets"], np.int64)
        if len(fo) != len(ids) + 1 or len(ao) != len(ids) + 1:
            raise ValueError(f"{path}: offsets do not match {len(ids)} video ids")
        frames, audio = NpzRows(path, "frames"), NpzRows(path, "audio")
        if fo[-1] != frames.shape[0] or ao[-1] != audio.shape[0]:
            raise ValueError(f"{path}: offsets end at {fo[-1]}/{ao[-1]} rows, the arrays have "
                             f"{frames.shape[0]}/{audio.shape[0]}")
        if frames.shape[1]:
            self.visual_dim = int(frames.shape[1])
        if audio.shape[1]:
            self.audio_dim = int(audio.shape[1])
        shard = len(self._frames)
        self._frames.append(frames)
        self._audio.append(audio)
        for i, vid in enumerate(ids):
            if vid in self._where:
                raise ValueError(f"{path}: video {vid!r} already present in another shard")
            self._where[vid] = (shard, int(fo[i]), int(fo[i + 1]), int(ao[i]), int(ao[i + 1]))

    def __contains__(self, video_id: str) -> bool:
        return video_id in self._where

    def __len__(self) -> int:
        return len(self._where)

    @property
    def video_ids(self) -> list[str]:
        """Every video of the shards, in shard order."""
        return list(self._where)

    def _locate(self, video_id: str) -> tuple[int, int, int, int, int]:
        try:
            return self._where[video_id]
        except KeyError:
            raise KeyError(f"video {video_id!r} is in no feature shard") from None

    def n_frames(self, video_id: str) -> int:
        _, f0, f1, _, _ = self._locate(video_id)
        return f1 - f0

    def frames(self, video_id: str) -> np.ndarray:
        shard, f0, f1, _, _ = self._locate(video_id)
        return self._frames[shard].read(f0, f1).astype(np.float32)

    def audio(self, video_id: str) -> np.ndarray:
        shard, _, _, a0, a1 = self._locate(video_id)
        return self._audio[shard].read(a0, a1).astype(np.float32)
