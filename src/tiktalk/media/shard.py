"""Shard jobs called by the Snakemake scripts: fetch a shard's videos, then extract features.

Fetch status (``{shard}.fetch.tsv``, :data:`FETCH_COLUMNS`): video_id, status ("ok"|"failed"),
reason ("" when ok), path (local file when ok). One row per video of the shard, in shard order,
written LAST and atomically. A local source (``local`` resolver, ``file://`` in a CSV) is used
in place, not copied.

Extraction writes the features ``.npz`` (:mod:`tiktalk.formats` FEATURES) and then, LAST, the
media status table (formats.STATUS_COLUMNS); fetch failures are carried over with reason
``fetch: ...``, decode failures get ``decode: ...``.
"""

from __future__ import annotations

import logging
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import torch

from tiktalk.formats import FEATURES_VERSION, STATUS_COLUMNS
from tiktalk.io import atomic_path
from tiktalk.media.config import MediaConfig
from tiktalk.media.decode import DecodeError, decode_video
from tiktalk.media.download import (DownloadConfig, DownloadError, HostRateLimiter, download,
                                    validate_media)
from tiktalk.media.ids import InvalidVideoId, validate_video_id
from tiktalk.media.sources import DouyinApiResolver, ResolveError, make_resolver

log = logging.getLogger(__name__)

FETCH_COLUMNS = ("video_id", "status", "reason", "path")


# ----------------------------------------------------------------------------- TSV helpers

def _clean(value: object) -> str:
    if value is None:
        return ""
    return " ".join(str(value).replace("\t", " ").splitlines()).strip()


def write_tsv(path: str | Path, columns: Sequence[str], rows: Iterable[Mapping]) -> None:
    """Atomic tab-separated table with a header; tabs/newlines inside values become spaces."""
    lines = ["\t".join(columns)]
    for row in rows:
        lines.append("\t".join(_clean(row.get(c, "")) for c in columns))
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_tsv(path: str | Path, columns: Sequence[str]) -> list[dict]:
    """Read a table written by :func:`write_tsv`; a wrong header or row raises ValueError."""
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    if not lines or tuple(lines[0].split("\t")) != tuple(columns):
        raise ValueError(f"{path}: expected header {list(columns)}, got {lines[:1]}")
    rows = []
    for lineno, line in enumerate(lines[1:], 2):
        if not line:
            continue
        parts = line.split("\t")
        if len(parts) != len(columns):
            raise ValueError(f"{path}:{lineno}: {len(parts)} fields, expected {len(columns)}")
        rows.append(dict(zip(columns, parts)))
    return rows


# ----------------------------------------------------------------------------- fetch

def _fetch_one(video_id: str, resolver, dl_cfg: DownloadConfig, out_dir: Path,
               limiter: HostRateLimiter, id_pattern: str | None) -> dict:
    row = {"video_id": video_id, "status": "failed", "reason": "", "path": ""}
    try:
        if id_pattern:
            validate_video_id(video_id, id_pattern)
        else:
            validate_video_id(video_id)
        src = resolver.resolve(video_id)
        if src.kind == "file":
            validate_media(src.location)
            row.update(status="ok", path=src.location)
            return row
        dest = out_dir / f"{video_id}.mp4"
        if dest.exists():
            try:
                validate_media(dest)
                row.update(status="ok", path=str(dest))
                return row
            except DownloadError:
                dest.unlink()
        info = download(src.location, dest, dl_cfg, rate_limiter=limiter)
        row.update(status="ok", path=info["path"])
    except InvalidVideoId as exc:
        row["reason"] = f"invalid id: {exc}"
    except ResolveError as exc:
        row["reason"] = f"resolve: {exc}"
    except DownloadError as exc:
        row["reason"] = f"download: {exc}"
    except Exception as exc:  # never fail the shard for one video
        log.exception("unexpected error fetching %s", video_id)
        row["reason"] = f"internal error: {type(exc).__name__}: {exc}"
    return row


def fetch_shard(video_ids: Sequence[str], resolver_cfg: Mapping, download_cfg: Mapping | DownloadConfig | None,
                out_dir: str | Path, out_status: str | Path, id_pattern: str | None = None) -> list[dict]:
    """Fetch every video of a shard into ``out_dir``; write the fetch status table LAST.

    One bad video (bad id, unresolvable, download or validation failure) is a failed row
    with a reason, never an exception. ``id_pattern`` (e.g. config ``data.video_id_pattern``)
    overrides ``resolver_cfg["id_pattern"]``. Returns the rows.
    """
    if id_pattern:
        resolver_cfg = {**resolver_cfg, "id_pattern": id_pattern}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dl_cfg = download_cfg if isinstance(download_cfg, DownloadConfig) else DownloadConfig.from_dict(download_cfg)
    resolver = make_resolver(resolver_cfg)
    limiter = HostRateLimiter(dl_cfg.host_min_interval_s)
    if isinstance(resolver, DouyinApiResolver):
        resolver.rate_limiter = limiter
    seen, ids = set(), []
    for vid in video_ids:
        if vid in seen:
            log.warning("video id %r listed twice in the shard; fetched once", vid)
            continue
        seen.add(vid)
        ids.append(vid)
    t0 = time.monotonic()
    pattern = resolver_cfg.get("id_pattern")
    with ThreadPoolExecutor(max_workers=max(1, dl_cfg.workers)) as pool:
        futures = [pool.submit(_fetch_one, vid, resolver, dl_cfg, out_dir, limiter, pattern) for vid in ids]
        rows = []
        for i, fut in enumerate(futures, 1):
            rows.append(fut.result())
            if i % 16 == 0 or i == len(futures):
                log.info("fetch: %d/%d videos (%.1fs)", i, len(futures), time.monotonic() - t0)
    n_ok = sum(r["status"] == "ok" for r in rows)
    log.info("fetch done: %d ok, %d failed of %d", n_ok, len(rows) - n_ok, len(rows))
    write_tsv(out_status, FETCH_COLUMNS, rows)
    return rows


# ----------------------------------------------------------------------------- extract

class _DecodeDataset(torch.utils.data.Dataset):
    """One item per video: decoded frames (uint8 tensor) + VGGish log-mel examples, or the
    reason it failed. Runs in the DataLoader's decoder processes."""

    def __init__(self, items: list[tuple[str, str]], cfg: MediaConfig):
        self.items, self.cfg = items, cfg

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        from tiktalk.media.vggish import waveform_to_examples

        vid, path = self.items[i]
        cfg = self.cfg
        try:
            d = decode_video(path, max_frames=cfg.max_frames, frame_size=cfg.frame_size,
                             max_duration_s=cfg.max_duration_s, skip_nonref=cfg.skip_nonref,
                             audio=cfg.audio and cfg.max_audio_frames > 0, max_pixels=cfg.max_pixels,
                             threads=cfg.decoder_threads)
        except DecodeError as exc:
            return {"video_id": vid, "ok": False, "reason": f"decode: {exc}"}
        except Exception as exc:
            return {"video_id": vid, "ok": False, "reason": f"decode: {type(exc).__name__}: {exc}"}
        if cfg.audio and cfg.max_audio_frames > 0 and d.audio.size:
            examples = waveform_to_examples(d.audio, max_examples=cfg.max_audio_frames)
        else:
            examples = np.zeros((0, 96, 64), np.float32)
        return {"video_id": vid, "ok": True, "reason": "", "frames": torch.from_numpy(d.frames),
                "examples": torch.from_numpy(examples), "duration": d.duration, "notes": d.notes}


def _worker_init(_):
    torch.set_num_threads(1)


def _collate(batch):
    return batch


@dataclass
class _Result:
    frames: np.ndarray
    audio: np.ndarray
    row: dict


def extract_shard(fetch_status_path: str | Path, media_cfg: Mapping | MediaConfig,
                  out_features_npz: str | Path, out_status_tsv: str | Path,
                  device: str | None = None) -> dict:
    """Decode and featurise every fetched video of a shard; write .npz then status LAST.

    Decoding runs in ``num_workers`` DataLoader processes; frames of ``videos_per_batch``
    videos are batched through the visual backbone and log-mel examples through VGGish.
    Returns a summary dict (counts, seconds, weight sources, per-video notes).
    """
    from tiktalk.media.vggish import AudioEncoder
    from tiktalk.media.visual import VisualEncoder

    cfg = media_cfg if isinstance(media_cfg, MediaConfig) else MediaConfig.from_dict(media_cfg)
    device = resolve_device(device or cfg.device)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    fetch_rows = read_tsv(fetch_status_path, FETCH_COLUMNS)
    t0 = time.monotonic()

    items = [(r["video_id"], r["path"]) for r in fetch_rows if r["status"] == "ok"]
    loader = torch.utils.data.DataLoader(
        _DecodeDataset(items, cfg), batch_size=cfg.videos_per_batch, shuffle=False,
        num_workers=cfg.num_workers, collate_fn=_collate, worker_init_fn=_worker_init if cfg.num_workers else None,
        prefetch_factor=2 if cfg.num_workers else None, persistent_workers=False)
    # Start the decoder processes (fork) before the models exist and before any intra-op
    # thread pool runs in this process; they decode while the models are being built.
    batches = iter(loader) if items else iter(())
    visual = VisualEncoder(cfg.backbone, cfg.backbone_weights, input_size=cfg.input_size,
                           device=device, batch_size=cfg.batch_size, seed=cfg.seed)
    use_audio = cfg.audio and cfg.max_audio_frames > 0
    audio_enc = (AudioEncoder(cfg.vggish_weights, cfg.vggish_pca, max_examples=cfg.max_audio_frames,
                              device=device, seed=cfg.seed, batch_size=max(cfg.batch_size, 16))
                 if use_audio else None)
    audio_dim = audio_enc.dim if audio_enc is not None else 128

    results: dict[str, _Result] = {}
    for r in fetch_rows:
        if r["status"] != "ok":
            results[r["video_id"]] = _Result(np.zeros((0, visual.dim), np.float32), np.zeros((0, audio_dim), np.float32),
                                             _status_row(r["video_id"], f"fetch: {r['reason'] or 'failed'}"))
    notes: dict[str, list[str]] = {}
    try:
        from tqdm import tqdm
        bar = tqdm(total=len(items), desc=f"extract {Path(out_features_npz).name}", unit="video",
                   file=sys.stderr, disable=None, mininterval=5)
    except ImportError:  # pragma: no cover
        bar = None
    done = 0
    for batch in batches:
        good = [b for b in batch if b["ok"]]
        for b in batch:
            if not b["ok"]:
                results[b["video_id"]] = _Result(np.zeros((0, visual.dim), np.float32),
                                                 np.zeros((0, audio_dim), np.float32),
                                                 _status_row(b["video_id"], b["reason"]))
        if good:
            frames = torch.cat([b["frames"] for b in good])
            vis = visual.encode(frames)
            if audio_enc is not None:
                ex = torch.cat([b["examples"] for b in good]).numpy()
                aud = audio_enc.encode_examples(ex, truncate=False)
            else:
                aud = np.zeros((0, audio_dim), np.float32)
            fo = ao = 0
            for b in good:
                nf, na = len(b["frames"]), len(b["examples"]) if audio_enc is not None else 0
                row = _status_row(b["video_id"], "", n_frames=nf, n_audio=na, duration=b["duration"])
                results[b["video_id"]] = _Result(vis[fo:fo + nf], aud[ao:ao + na], row)
                fo, ao = fo + nf, ao + na
                if b["notes"]:
                    notes[b["video_id"]] = b["notes"]
                    log.info("%s: %s", b["video_id"], "; ".join(b["notes"]))
        done += len(batch)
        if bar is not None:
            bar.update(len(batch))
        if bar is None or bar.disable:
            if done % 32 < len(batch) or done == len(items):
                log.info("extract: %d/%d videos (%.1fs)", done, len(items), time.monotonic() - t0)
    if bar is not None:
        bar.close()

    order = [r["video_id"] for r in fetch_rows]
    ordered = [results[v] for v in order]
    _write_features(out_features_npz, order, ordered, visual.dim, audio_dim)
    write_tsv(out_status_tsv, STATUS_COLUMNS, [r.row for r in ordered])
    seconds = time.monotonic() - t0
    n_ok = sum(r.row["status"] == "ok" for r in ordered)
    summary = {"n_videos": len(order), "n_ok": n_ok, "n_failed": len(order) - n_ok, "seconds": seconds,
               "visual_weights": visual.weights_source,
               "vggish_weights": audio_enc.weights_source if audio_enc is not None else "audio disabled",
               "notes": notes}
    log.info("extract done: %d ok, %d failed of %d in %.1fs (visual: %s; vggish: %s)", n_ok,
             len(order) - n_ok, len(order), seconds, summary["visual_weights"], summary["vggish_weights"])
    return summary


def resolve_device(device: str | None) -> str:
    """"auto" (or None) -> "cuda" when available, else "cpu"; anything else unchanged."""
    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _status_row(video_id: str, reason: str, n_frames: int = 0, n_audio: int = 0,
                duration: float | None = None) -> dict:
    return {"video_id": video_id, "status": "failed" if reason else "ok", "reason": reason,
            "n_frames": n_frames, "n_audio_frames": n_audio,
            "duration": "" if duration is None else f"{duration:.3f}"}


F16_MAX = float(np.finfo(np.float16).max)


def _to_f16(a: np.ndarray, name: str) -> np.ndarray:
    """float16 for disk; non-finite model outputs are an error, values beyond the float16 range
    are clipped with a warning (never written as inf)."""
    if a.size and not np.isfinite(a).all():
        raise ValueError(f"{name} features contain NaN/inf: the model is broken")
    big = int(np.count_nonzero(np.abs(a) > F16_MAX))
    if big:
        log.warning("%d %s feature values beyond the float16 range were clipped", big, name)
        a = np.clip(a, -F16_MAX, F16_MAX)
    return a.astype(np.float16)


def _write_features(path: str | Path, ids: list[str], results: list[_Result], vdim: int, adim: int) -> None:
    fo = np.zeros(len(ids) + 1, np.int64)
    ao = np.zeros(len(ids) + 1, np.int64)
    for i, r in enumerate(results):
        fo[i + 1] = fo[i] + len(r.frames)
        ao[i + 1] = ao[i] + len(r.audio)
    frames = _to_f16(np.concatenate([r.frames for r in results]) if results else np.zeros((0, vdim)), "frames")
    audio = _to_f16(np.concatenate([r.audio for r in results]) if results else np.zeros((0, adim)), "audio")
    if frames.ndim != 2:
        frames = frames.reshape(0, vdim)
    if audio.ndim != 2:
        audio = audio.reshape(0, adim)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, version=np.int64(FEATURES_VERSION), video_ids=np.asarray(ids, dtype=str),
                     frame_offsets=fo, frames=frames, audio_offsets=ao, audio=audio)
