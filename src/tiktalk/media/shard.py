"""Shard jobs called by the Snakemake scripts: fetch a shard's videos, then extract features.

Fetch (:func:`fetch_shard`) writes the fetch table (:mod:`tiktalk.formats` FETCH) LAST and
atomically: one row per video of the shard, in shard order. A local source (``local``
resolver, ``file://`` in a CSV) is used in place, not copied; a download already on disk that
still validates is reused, so a re-run fetches only what failed.

Extraction (:func:`extract_shard`) decodes every fetched video ONCE and feeds the decoded
frames and audio to every encoder of the chain (:mod:`tiktalk.media.encoders`: ResNet frames,
VGGish audio and, when asked for, the BLIP-2 image encoder). It writes one feature shard per
output kind (``features.npz``, ``image.npz``) and then, LAST, the one media status table of
the shard (formats STATUS): fetch failures are carried over as ``fetch: ...``, decode failures
(including truncated files) get ``decode: ...``.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import torch

from tiktalk.formats import FETCH_COLUMNS
from tiktalk.logs import progress
from tiktalk.media.config import MediaConfig
from tiktalk.media.decode import AUDIO_RATE, DecodeError, decode_video
from tiktalk.media.download import (DownloadConfig, DownloadError, HostRateLimiter, download,
                                    validate_media)
from tiktalk.media.encoders import DecodePlan, Encoder, build_encoders, chain_provenance, plan_for
from tiktalk.media.ids import InvalidVideoId, validate_video_id
from tiktalk.media.image_encoder import ImageEncoderConfig
from tiktalk.media.resolvers import make_resolver
from tiktalk.media.sources import DouyinApiResolver, ResolveError, SourceUnavailable
from tiktalk.media.store import write_feature_shard
from tiktalk.media.tables import read_fetch, read_tsv, status_row, write_fetch, write_status, write_tsv
from tiktalk.runtime import resolve_device

log = logging.getLogger(__name__)

__all__ = ["FETCH_COLUMNS", "extract_shard", "fetch_shard", "read_tsv", "write_tsv"]


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
            validate_media(src.location, dl_cfg.min_complete_fraction)
            row.update(status="ok", path=src.location)
            return row
        dest = out_dir / f"{video_id}.mp4"
        if dest.exists():
            try:
                validate_media(dest, dl_cfg.min_complete_fraction)
                row.update(status="ok", path=str(dest))
                return row
            except DownloadError:
                dest.unlink()
        info = download(src.location, dest, dl_cfg, rate_limiter=limiter, headers=src.headers)
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
    """Fetch every video of a shard into ``out_dir``; write the fetch table LAST.

    One bad video (bad id, unresolvable, refused host, download or validation failure,
    truncated file) is a failed row with a reason, never an exception. ``id_pattern`` (config
    ``data.video_id_pattern``) overrides ``resolver_cfg["id_pattern"]``; without either, the
    default :data:`tiktalk.formats.VIDEO_ID_PATTERN` applies. Returns the rows.

    A source that answers nothing at all stops the shard instead: with ``douyin_api``, the
    first ``stop_after_empty`` ids are fetched one by one and, when every one came back empty,
    :class:`~tiktalk.media.sources.SourceUnavailable` says (in one line) which source to use.
    """
    if id_pattern:
        resolver_cfg = {**resolver_cfg, "id_pattern": id_pattern}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dl_cfg = download_cfg if isinstance(download_cfg, DownloadConfig) else DownloadConfig.from_dict(download_cfg)
    resolver = make_resolver(resolver_cfg, host_policy=dl_cfg.host_policy)
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
    pattern = resolver_cfg.get("id_pattern")
    rows = []
    if isinstance(resolver, DouyinApiResolver) and resolver.stop_after_empty > 0:
        # a dead endpoint is known after a few ids: ask them first, one by one
        rows = [_fetch_one(vid, resolver, dl_cfg, out_dir, limiter, pattern)
                for vid in ids[:resolver.stop_after_empty]]
        verdict = resolver.dead_after(len(rows))
        if verdict:
            raise SourceUnavailable(verdict)
    with ThreadPoolExecutor(max_workers=max(1, dl_cfg.workers)) as pool:
        futures = [pool.submit(_fetch_one, vid, resolver, dl_cfg, out_dir, limiter, pattern)
                   for vid in ids[len(rows):]]
        rows += [fut.result() for fut in progress(futures, desc=f"fetch {out_status}")]
    n_ok = sum(r["status"] == "ok" for r in rows)
    log.info("fetch done: %d ok, %d failed of %d", n_ok, len(rows) - n_ok, len(rows))
    write_fetch(out_status, rows)
    return rows


# ----------------------------------------------------------------------------- extract

class _DecodeDataset(torch.utils.data.Dataset):
    """One item per video, decoded once for the whole chain: every frame set of the plan
    (uint8 tensors) and the VGGish log-mel examples, or the reason it failed. Runs in the
    DataLoader's decoder processes."""

    def __init__(self, items: list[tuple[str, str]], cfg: MediaConfig, plan: DecodePlan):
        self.items, self.cfg, self.plan = items, cfg, plan

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        from tiktalk.media.vggish import EXAMPLE_SECONDS, waveform_to_examples

        vid, path = self.items[i]
        cfg, plan = self.cfg, self.plan
        try:
            d = decode_video(path, requests=plan.requests, max_duration_s=cfg.max_duration_s,
                             skip_nonref=cfg.skip_nonref, audio=plan.audio, max_pixels=cfg.max_pixels,
                             threads=cfg.decoder_threads, min_decoded_fraction=cfg.min_decoded_fraction)
        except DecodeError as exc:
            return {"video_id": vid, "ok": False, "reason": f"decode: {exc}"}
        except Exception as exc:
            return {"video_id": vid, "ok": False, "reason": f"decode: {type(exc).__name__}: {exc}"}
        inputs = {name: torch.from_numpy(fs.frames) for name, fs in d.frame_sets.items()}
        notes = list(d.notes)
        if plan.audio and d.audio.size:
            examples = waveform_to_examples(d.audio, max_examples=plan.audio_examples)
            if not len(examples) and plan.audio_examples:
                notes.append(f"audio {len(d.audio) / AUDIO_RATE:.1f} s is shorter than one VGGish "
                             f"example ({EXAMPLE_SECONDS:g} s): no audio frames")
        else:
            examples = np.zeros((0, 96, 64), np.float32)
        inputs["audio"] = torch.from_numpy(examples)
        return {"video_id": vid, "ok": True, "reason": "", "inputs": inputs, "duration": d.duration,
                "decoded_s": d.decoded_s, "notes": notes}


def _worker_init(_):
    torch.set_num_threads(1)


def _collate(batch):
    return batch


@dataclass
class _Result:
    rows: dict[str, np.ndarray]      # encoder name -> (rows, dim)
    status: dict


def extract_shard(fetch_status_path: str | Path, media_cfg: Mapping | MediaConfig,
                  out_features_npz: str | Path, out_status_tsv: str | Path,
                  device: str | None = None, *, image_encoder: Mapping | ImageEncoderConfig | None = None,
                  out_image_npz: str | Path | None = None, seed: int = 0,
                  views: Sequence[str] = ("img", "video")) -> dict:
    """Decode every fetched video of a shard once, run the encoder chain, write the feature
    shards and then the status table LAST.

    ``image_encoder`` (config ``media.image_encoder``) adds the BLIP-2 image encoder to the
    chain; its tokens go to ``out_image_npz`` (both or neither); ``seed`` (the run's) picks
    each video's BLIP-2_Img frame and ``views`` names the BLIP-2 modes whose views the shard
    stores (``store: views``). Decoding runs in
    ``num_workers`` DataLoader processes; the frames of ``videos_per_batch`` videos are batched
    through each model. Returns a summary dict (counts, seconds, weight sources, notes).
    """
    cfg = media_cfg if isinstance(media_cfg, MediaConfig) else MediaConfig.from_dict(media_cfg)
    if (image_encoder is None) != (out_image_npz is None):
        raise ValueError("extract_shard: image_encoder and out_image_npz go together")
    icfg = (image_encoder if isinstance(image_encoder, ImageEncoderConfig) or image_encoder is None
            else ImageEncoderConfig.from_dict(image_encoder))
    device = resolve_device(device or cfg.device)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    fetch_rows = read_fetch(fetch_status_path)
    t0 = time.monotonic()

    plan = plan_for(cfg, icfg)
    items = [(r["video_id"], r["path"]) for r in fetch_rows if r["status"] == "ok"]
    loader = torch.utils.data.DataLoader(
        _DecodeDataset(items, cfg, plan), batch_size=cfg.videos_per_batch, shuffle=False,
        num_workers=cfg.num_workers, collate_fn=_collate, worker_init_fn=_worker_init if cfg.num_workers else None,
        prefetch_factor=2 if cfg.num_workers else None, persistent_workers=False)
    # Start the decoder processes (fork) before the models exist and before any intra-op
    # thread pool runs in this process; they decode while the models are being built.
    batches = iter(loader) if items else iter(())
    chain = build_encoders(cfg, device, icfg, seed, views)
    dims = {e.name: e.dim for e in chain}
    dims.setdefault("audio", 128)        # audio off: zero-row audio arrays keep the layout

    def empty() -> dict[str, np.ndarray]:
        return {name: np.zeros((0, dim), np.float32) for name, dim in dims.items()}

    results: dict[str, _Result] = {}
    for r in fetch_rows:
        if r["status"] != "ok":
            results[r["video_id"]] = _Result(empty(), status_row(r["video_id"], f"fetch: {r['reason'] or 'failed'}"))
    notes: dict[str, list[str]] = {}
    # progress in videos (a batch counts its videos), to the job's log
    for batch in progress(batches, total=len(items), size=len,
                          desc=f"extract {out_features_npz}"):
        good = [b for b in batch if b["ok"]]
        for b in batch:
            if not b["ok"]:
                results[b["video_id"]] = _Result(empty(), status_row(b["video_id"], b["reason"]))
                log.info("%s: %s", b["video_id"], b["reason"])
        encoded = {e.name: e.encode([b["inputs"][e.name] for b in good]) for e in chain}
        for i, b in enumerate(good):
            rows = empty()
            rows.update({name: out[i] for name, out in encoded.items()})
            n_audio = len(rows["audio"]) if "audio" in encoded else 0
            row = status_row(b["video_id"], "", n_frames=len(rows["visual"]), n_audio=n_audio,
                             duration=b["duration"], decoded_s=b["decoded_s"], notes=b["notes"])
            results[b["video_id"]] = _Result(rows, row)
            if b["notes"]:
                notes[b["video_id"]] = b["notes"]
                log.info("%s: %s", b["video_id"], "; ".join(b["notes"]))

    order = [r["video_id"] for r in fetch_rows]
    ordered = [results[v] for v in order]
    outputs = {"features": out_features_npz, "image": out_image_npz}
    _write_outputs(outputs, order, ordered, chain, dims)
    write_status(out_status_tsv, [r.status for r in ordered])
    seconds = time.monotonic() - t0
    n_ok = sum(r.status["status"] == "ok" for r in ordered)
    summary = {"n_videos": len(order), "n_ok": n_ok, "n_failed": len(order) - n_ok, "seconds": seconds,
               "encoders": {e.name: e.source for e in chain}, "notes": notes}
    summary["visual_weights"] = summary["encoders"]["visual"]
    summary["vggish_weights"] = summary["encoders"].get("audio", "audio disabled")
    log.info("extract done: %d ok, %d failed of %d in %.1fs (%s)", n_ok, len(order) - n_ok,
             len(order), seconds, "; ".join(f"{k}: {v}" for k, v in summary["encoders"].items()))
    return summary


def _write_outputs(outputs: Mapping[str, str | Path | None], ids: list[str], results: list[_Result],
                   chain: Sequence[Encoder], dims: Mapping[str, int]) -> None:
    """One feature shard per output kind, each through the one shard writer."""
    for kind, path in outputs.items():
        if path is None:
            continue
        members = [e for e in chain if e.output == kind]
        slots = {e.slot: e for e in members}
        if "frames" not in slots:
            raise ValueError(f"no encoder of the chain writes the frames of the {kind} shard")
        fe, ae = slots["frames"], slots.get("audio")
        # which weight files made these rows (sha256) and whether any model was random
        extra: dict = {"provenance": np.array(json.dumps(chain_provenance(members), sort_keys=True))}
        for e in members:
            extra.update(e.extra())
        if kind == "features":
            audio = [r.rows["audio"] for r in results]
            audio_dim = dims["audio"]
        else:
            audio, audio_dim = (None, 0) if ae is None else ([r.rows[ae.name] for r in results], ae.dim)
        frames = fe.finish(ids, [r.rows[fe.name] for r in results])
        write_feature_shard(path, ids, frames, audio, fe.dim, audio_dim, extra)
