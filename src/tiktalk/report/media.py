"""Media report: ok/failed by reason per split, videos per shard, frames per video."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import pandas as pd

from tiktalk.formats import MANIFEST_COLUMNS, STATUS_COLUMNS
from tiktalk.io import atomic_path
from tiktalk.media.tables import read_status
from tiktalk.report.plots import plot_histogram


def read_status_tables(paths: Sequence[str | os.PathLike]) -> pd.DataFrame:
    frames = []
    for path in paths:
        # the status table's one reader (checks its header, i.e. its version)
        df = pd.DataFrame(read_status(path), columns=list(STATUS_COLUMNS))
        df["shard"] = Path(path).name.split(".")[0]
        frames.append(df)
    if not frames:
        raise ValueError("no media status tables given")
    return pd.concat(frames, ignore_index=True)


def media_summary(status: pd.DataFrame, manifest: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(by split/status/reason counts, per-shard counts). Every manifest video must appear."""
    missing = sorted(set(manifest["video_id"]) - set(status["video_id"]))
    if missing:
        raise ValueError(f"{len(missing)} manifest video(s) have no status row, e.g. {missing[:5]}")
    df = status.merge(manifest[["video_id", "split"]], on="video_id", how="left")
    df["split"] = df["split"].fillna("?")
    by_reason = (df.groupby(["split", "status", "reason"], dropna=False).size()
                 .reset_index(name="videos").sort_values(["split", "status", "reason"]))
    per_shard = (df.assign(ok=df["status"].eq("ok"))
                 .groupby("shard").agg(videos=("video_id", "size"), ok=("ok", "sum"))
                 .reset_index())
    per_shard["failed"] = per_shard["videos"] - per_shard["ok"]
    return by_reason, per_shard


def write_media_report(status_paths, manifest_path, out_tsv, out_shards_tsv, out_frames_png,
                       out_audio_png) -> dict:
    status = read_status_tables(status_paths)
    manifest = pd.read_csv(manifest_path, sep="\t", dtype=str, keep_default_na=False)
    if list(manifest.columns[: len(MANIFEST_COLUMNS)]) != list(MANIFEST_COLUMNS):
        raise ValueError(f"{manifest_path}: expected columns {MANIFEST_COLUMNS}")
    by_reason, per_shard = media_summary(status, manifest)
    for df, path in ((by_reason, out_tsv), (per_shard, out_shards_tsv)):
        with atomic_path(path) as tmp:
            df.to_csv(tmp, sep="\t", index=False)
    ok = status[status["status"] == "ok"]
    title = f"({len(ok)} ok videos of {len(status)})"
    frames = plot_histogram(ok["n_frames"].astype(float), out_frames_png, integer_bins=True,
                            title=f"Frames per video {title}", xlabel="frames", ylabel="videos")
    audio = plot_histogram(ok["n_audio_frames"].astype(float), out_audio_png, integer_bins=True,
                           title=f"VGGish frames (0.96 s) per video {title}",
                           xlabel="audio frames", ylabel="videos")
    return {"videos": int(len(status)), "ok": int(len(ok)), "frames": frames, "audio": audio}
