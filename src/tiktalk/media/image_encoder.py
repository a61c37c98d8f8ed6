"""Frozen image encoder for the BLIP-2 baselines: per-frame patch-token features.

Real: EVA-CLIP ViT-g/14 as BLIP-2 uses it (39 blocks: the last one removed, 1408-d, 257 tokens
at 224 px, followed by BLIP-2's pre-trained ``ln_vision``), i.e. the vision tower of a BLIP-2
checkpoint (``kind: blip2_vision``, e.g. ``Salesforce/blip2-opt-2.7b``). Only its
``vision_model.*`` tensors are read from the checkpoint's safetensors files (a local directory,
or the needed shards of a hub repository) into a ``transformers.Blip2VisionModel``; the
language model in the same checkpoint is never loaded. Preprocessing is BLIP-2's: square
bicubic resize to ``image_size``, CLIP mean/std.

Demo: ``kind: vit``: a ``transformers.ViTModel`` built from ``vit_config`` with a seeded random
init (or ``from_pretrained(name_or_path)`` when one is given).

Stored features (``extract_shard_image_features``) use the feature-shard ``.npz`` layout of
:mod:`tiktalk.formats` so :class:`~tiktalk.media.store.FeatureStore` reads them: ``frames`` holds
the ``tokens_per_frame`` token rows of every frame, frame after frame (a video with F frames has
F * T rows), plus two extra keys: ``tokens_per_frame`` (int64) and ``encoder`` (str). Audio
arrays are empty. Use :func:`load_image_tokens` to get (F, T, D) per video back.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from tiktalk.formats import FEATURES_VERSION, STATUS_COLUMNS
from tiktalk.io import atomic_path

log = logging.getLogger(__name__)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
KINDS = ("vit", "blip2_vision")


@dataclass
class ImageEncoderConfig:
    kind: str = "blip2_vision"
    name_or_path: str | None = "Salesforce/blip2-opt-2.7b"
    revision: str | None = None
    vit_config: dict | None = None         # kind=vit without name_or_path: ViTConfig kwargs
    seed: int = 0                          # random init of the demo ViT
    image_size: int | None = None          # default: the model config's image_size
    mean: list[float] = field(default_factory=lambda: list(CLIP_MEAN))
    std: list[float] = field(default_factory=lambda: list(CLIP_STD))
    pooled: bool = False                   # keep only the first ([CLS]) token of each frame
    n_frames: int = 8                      # frames per video for the shard files
    batch_size: int = 16
    device: str = "cpu"
    fp16: bool = True                      # autocast on CUDA

    @classmethod
    def from_dict(cls, d: dict | None) -> "ImageEncoderConfig":
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown image encoder keys {unknown}; known: {sorted(known)}")
        cfg = cls(**d)
        if cfg.kind not in KINDS:
            raise ValueError(f"image encoder kind must be one of {KINDS}, got {cfg.kind!r}")
        if cfg.kind == "blip2_vision" and not cfg.name_or_path:
            raise ValueError("kind blip2_vision needs name_or_path (a BLIP-2 checkpoint)")
        if cfg.kind == "vit" and not (cfg.name_or_path or cfg.vit_config):
            raise ValueError("kind vit needs name_or_path or vit_config")
        return cfg

    def describe(self) -> str:
        if self.kind == "vit" and not self.name_or_path:
            return f"vit random init (seed {self.seed}) {json.dumps(self.vit_config, sort_keys=True)}"
        return f"{self.kind}:{self.name_or_path}" + (f"@{self.revision}" if self.revision else "")


# -- loading --------------------------------------------------------------------------------
def _checkpoint_files(name_or_path: str, revision: str | None, prefix: str | tuple[str, ...]) -> list[Path]:
    """The safetensors files of a checkpoint that hold tensors starting with ``prefix``."""
    local = Path(name_or_path)
    index_name, single_name = "model.safetensors.index.json", "model.safetensors"

    def fetch(filename: str) -> Path | None:
        if local.is_dir():
            p = local / filename
            return p if p.exists() else None
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError

        try:
            return Path(hf_hub_download(name_or_path, filename, revision=revision))
        except EntryNotFoundError:
            return None

    index = fetch(index_name)
    if index is not None:
        weight_map = json.loads(index.read_text())["weight_map"]
        shards = sorted({f for k, f in weight_map.items() if k.startswith(prefix)})
        if not shards:
            raise ValueError(f"{name_or_path}: no tensor named {prefix}* in {index_name}")
        files = [fetch(s) for s in shards]
        if any(f is None for f in files):
            raise FileNotFoundError(f"{name_or_path}: shard listed in {index_name} is missing")
        return files  # type: ignore[return-value]
    single = fetch(single_name)
    if single is None:
        raise FileNotFoundError(f"{name_or_path}: neither {index_name} nor {single_name} found")
    return [single]


def read_checkpoint_tensors(name_or_path: str, revision: str | None,
                            prefixes: str | tuple[str, ...]) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors checkpoint (local directory or hub repository) whose names
    start with one of ``prefixes``; only the shards that hold them are read (e.g. a BLIP-2
    checkpoint's vision tower or Q-Former, never its language model)."""
    from safetensors import safe_open

    state = {}
    for path in _checkpoint_files(name_or_path, revision, prefixes):
        with safe_open(str(path), framework="pt") as fh:
            for key in fh.keys():
                if key.startswith(prefixes):
                    state[key] = fh.get_tensor(key)
    return state


def load_blip2_vision(name_or_path: str, revision: str | None = None):
    """``Blip2VisionModel`` with the ``vision_model.*`` weights of a BLIP-2 checkpoint."""
    from transformers import AutoConfig, Blip2VisionModel

    conf = AutoConfig.from_pretrained(name_or_path, revision=revision)
    vconf = getattr(conf, "vision_config", conf)
    model = Blip2VisionModel(vconf)
    prefix = "vision_model."
    state = {k[len(prefix):]: v for k, v in read_checkpoint_tensors(name_or_path, revision, prefix).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{name_or_path}: vision weights do not fit Blip2VisionModel: "
                         f"missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model


def _build_vit(cfg: ImageEncoderConfig):
    from transformers import ViTConfig, ViTModel

    if cfg.name_or_path:
        return ViTModel.from_pretrained(cfg.name_or_path, revision=cfg.revision, add_pooling_layer=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = ViTModel(ViTConfig(**cfg.vit_config), add_pooling_layer=False)
    log.warning("image encoder: demo ViT with RANDOM INIT (seed %d)", cfg.seed)
    return model


class ImageEncoder:
    """uint8 RGB frames (N, H, W, 3) -> (N, T, D) float32 token features (T = 1 if pooled)."""

    def __init__(self, cfg: ImageEncoderConfig):
        self.cfg = cfg
        self.device = torch.device(cfg.device)
        if cfg.kind == "blip2_vision":
            self.model = load_blip2_vision(cfg.name_or_path, cfg.revision)
        else:
            self.model = _build_vit(cfg)
        self.model.eval().requires_grad_(False).to(self.device)
        mc = self.model.config
        self.image_size = int(cfg.image_size or mc.image_size)
        self.dim = int(mc.hidden_size)
        n_patches = (self.image_size // mc.patch_size) ** 2
        self.tokens_per_frame = 1 if cfg.pooled else n_patches + 1
        self.mean = torch.tensor(cfg.mean, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(cfg.std, device=self.device).view(1, 3, 1, 1)

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
        if x.shape[-2:] != (self.image_size, self.image_size):
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bicubic",
                              align_corners=False, antialias=True).clamp_(0.0, 1.0)
        return (x - self.mean) / self.std

    @torch.no_grad()
    def encode(self, frames: np.ndarray | torch.Tensor) -> np.ndarray:
        frames = torch.as_tensor(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be (N, H, W, 3) uint8, got {tuple(frames.shape)}")
        if len(frames) == 0:
            return np.zeros((0, self.tokens_per_frame, self.dim), np.float32)
        outs = []
        for i in range(0, len(frames), self.cfg.batch_size):
            x = self.preprocess(frames[i:i + self.cfg.batch_size])
            if self.device.type == "cuda" and self.cfg.fp16:
                with torch.autocast("cuda", dtype=torch.float16):
                    y = self.model(pixel_values=x).last_hidden_state
            else:
                y = self.model(pixel_values=x).last_hidden_state
            if self.cfg.pooled:
                y = y[:, :1]
            outs.append(y.float().cpu().numpy())
        return np.concatenate(outs)


def extract_image_features(frames_uint8: np.ndarray, cfg: ImageEncoderConfig | dict,
                           encoder: ImageEncoder | None = None) -> np.ndarray:
    """(N, H, W, 3) uint8 frames -> (N, T, D) float32 features (T = 1 when ``pooled``)."""
    if isinstance(cfg, dict):
        cfg = ImageEncoderConfig.from_dict(cfg)
    encoder = encoder or ImageEncoder(cfg)
    return encoder.encode(frames_uint8)


# -- shard files ----------------------------------------------------------------------------
def _fmt_duration(d) -> str:
    return "" if d is None else f"{float(d):.3f}"


def extract_shard_image_features(videos: Sequence[tuple], cfg: ImageEncoderConfig | dict,
                                 out_npz: str | os.PathLike, out_status: str | os.PathLike,
                                 encoder: ImageEncoder | None = None) -> dict[str, int]:
    """Encode ``n_frames`` uniformly spaced frames of every video of one shard.

    ``videos``: ``(video_id, path_or_None[, reason])`` in shard order; ``None`` (with the reason
    why, e.g. the fetch failure) marks a video that is not available. Writes ``out_npz`` (see
    the module doc), then the status table ``out_status`` LAST and atomically. A video that
    fails to decode is recorded as failed with zero rows; the shard still completes.
    Returns ``{"ok": n, "failed": m}``.
    """
    from tiktalk.media.decode import DecodeError, decode_video

    if isinstance(cfg, dict):
        cfg = ImageEncoderConfig.from_dict(cfg)
    encoder = encoder or ImageEncoder(cfg)
    ids, chunks, offsets, status = [], [], [0], []
    for item in videos:
        vid, path = str(item[0]), item[1]
        reason = str(item[2]) if len(item) > 2 and item[2] else "not fetched"
        rows = np.zeros((0, encoder.dim), np.float16)
        row = {"video_id": vid, "status": "failed", "reason": reason, "n_frames": 0,
               "n_audio_frames": 0, "duration": ""}
        if path is not None:
            try:
                dec = decode_video(path, max_frames=cfg.n_frames, frame_size=encoder.image_size,
                                   audio=False)
                feats = encoder.encode(dec.frames)          # (F, T, D)
                rows = feats.reshape(-1, encoder.dim).astype(np.float16)
                row.update(status="ok", reason="", n_frames=int(feats.shape[0]),
                           duration=_fmt_duration(dec.duration))
            except (DecodeError, OSError) as exc:
                row.update(reason=f"decode: {exc}".replace("\t", " ").replace("\n", " "))
                log.warning("video %s: %s", vid, row["reason"])
        ids.append(vid)
        chunks.append(rows)
        offsets.append(offsets[-1] + len(rows))
        status.append(row)
    frames = np.concatenate(chunks) if chunks else np.zeros((0, encoder.dim), np.float16)
    with atomic_path(out_npz) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(
                fh,
                version=np.int64(FEATURES_VERSION),
                video_ids=np.array(ids, dtype=str) if ids else np.zeros((0,), dtype="<U1"),
                frame_offsets=np.array(offsets, dtype=np.int64),
                frames=frames,
                audio_offsets=np.zeros(len(ids) + 1, dtype=np.int64),
                audio=np.zeros((0, 0), np.float16),
                tokens_per_frame=np.int64(encoder.tokens_per_frame),
                encoder=np.array(cfg.describe()),
            )
    lines = ["\t".join(STATUS_COLUMNS)]
    for row in status:
        lines.append("\t".join(str(row[c]) for c in STATUS_COLUMNS))
    with atomic_path(out_status) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    n_ok = sum(r["status"] == "ok" for r in status)
    return {"ok": n_ok, "failed": len(status) - n_ok}


def iter_image_tokens(paths: Sequence[str | os.PathLike]) -> Iterator[tuple[str, np.ndarray]]:
    """(video_id, (F, T, D) float32) for every video of image-encoder shard files, one shard in
    memory at a time (read through FeatureStore). A video without frames gives F = 0."""
    from tiktalk.media.store import FeatureStore

    seen: set[str] = set()
    for path in paths:
        with np.load(path, allow_pickle=False) as z:
            if "tokens_per_frame" not in z:
                raise ValueError(f"{path}: not an image-encoder feature shard (no tokens_per_frame)")
            t = int(z["tokens_per_frame"])
            ids = [str(v) for v in z["video_ids"]]
        store = FeatureStore([path])
        d = store.visual_dim
        for vid in ids:
            if vid in seen:
                raise ValueError(f"{path}: video {vid!r} already present in another shard")
            seen.add(vid)
            rows = store.frames(vid)
            if rows.shape[0] % t:
                raise ValueError(f"{path}: video {vid!r} has {rows.shape[0]} rows, not a multiple of {t}")
            yield vid, (rows.reshape(-1, t, d) if rows.shape[0] else np.zeros((0, t, d), np.float32))


def load_image_tokens(paths: Sequence[str | os.PathLike]) -> dict[str, np.ndarray]:
    """video_id -> (F, T, D) float32 from image-encoder shard files (all in memory)."""
    return dict(iter_image_tokens(paths))
