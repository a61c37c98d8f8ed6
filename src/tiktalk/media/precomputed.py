"""Feature shards made elsewhere (``media.precomputed: DIR``): adopted instead of fetched and
extracted.

A run on features extracted on another machine, shared by a collaborator or, in the scale
rehearsal (:mod:`tiktalk.scale`), written at the paper's dimensions without decoding any
video, reads the same shard files as a run that extracted them: ``DIR/{shard}.features.npz``,
``DIR/{shard}.status.tsv`` and, when a BLIP-2 row needs them, ``DIR/{shard}.image.npz``, with
the shard names and videos of this run's manifest (ids sorted, ``data.shard_size`` a shard).
:func:`adopt_shard` checks that every file holds exactly the shard's videos, in order, then
links the files into ``results/media/`` (a hard link where the file system allows it, else a
copy), the status table last. A shard made for another manifest is an error naming the file
and the first video that differs.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from tiktalk.io import atomic_path
from tiktalk.media.tables import read_status


def _ids_problem(path: Path, got: Sequence[str], want: Sequence[str]) -> str | None:
    if list(got) == list(want):
        return None
    for i, (a, b) in enumerate(zip(got, want)):
        if a != b:
            return f"{path}: video {i} is {a!r}, the manifest's shard has {b!r} there"
    return f"{path}: {len(got)} videos, the manifest's shard has {len(want)}"


def shard_video_ids(path: str | os.PathLike) -> list[str]:
    """The video ids of a feature or image shard, in order (the index only)."""
    with np.load(path, allow_pickle=False) as z:
        return [str(v) for v in z["video_ids"]]


def check_shard(files: Mapping[str, str | os.PathLike], video_ids: Sequence[str]) -> list[str]:
    """Problems (empty: none) of a precomputed shard's files (kind -> path: ``features``,
    ``status``, optionally ``image``) against the manifest's ``video_ids`` of that shard."""
    problems = []
    for kind, path in files.items():
        path = Path(path)
        if not path.exists():
            problems.append(f"{path}: missing (media.precomputed)")
            continue
        got = ([r["video_id"] for r in read_status(path)] if kind == "status"
               else shard_video_ids(path))
        problem = _ids_problem(path, got, video_ids)
        if problem:
            problems.append(problem)
    return problems


def _link_or_copy(src: Path, dest: Path) -> None:
    """``dest`` as a hard link to ``src`` (no second copy of the features: 36 GB at the
    release's size), or a copy where the file system cannot link (another device)."""
    with atomic_path(dest) as tmp:
        tmp.unlink()                     # atomic_path made the file; a link needs the name free
        try:
            os.link(src, tmp)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                raise
            shutil.copyfile(src, tmp)


def adopt_shard(files: Mapping[str, str | os.PathLike], outputs: Mapping[str, str | os.PathLike],
                video_ids: Sequence[str]) -> None:
    """Check a precomputed shard (:func:`check_shard`) and link its files to ``outputs``
    (same kinds), the status table last; ValueError listing every problem."""
    if set(files) != set(outputs):
        raise ValueError(f"precomputed shard files {sorted(files)} do not match the outputs {sorted(outputs)}")
    problems = check_shard(files, video_ids)
    if problems:
        raise ValueError("precomputed shard does not match this run's manifest "
                         "(same ids and data.shard_size?):\n  " + "\n  ".join(problems))
    for kind in sorted(files, key=lambda k: k == "status"):
        _link_or_copy(Path(files[kind]), Path(outputs[kind]))
