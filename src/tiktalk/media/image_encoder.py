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

The shard job (:func:`tiktalk.media.shard.extract_shard`) runs this encoder in its chain on the
same decoded videos as the ResNet and VGGish (``n_frames`` frames at ``image_size``), and
writes its rows to the image-feature shard (layout in :mod:`tiktalk.formats`; read back with
:class:`tiktalk.media.image_tokens.ImageTokenIndex`): by default only the two views the BLIP-2
rows read (``store: views``), not every frame.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
import torch.nn.functional as F

from tiktalk.runtime import resolve_device
from tiktalk.settings import from_mapping

STORES = ("views", "frames")     # what an image shard holds per video (see ImageEncoderConfig.store)

log = logging.getLogger(__name__)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
KINDS = ("vit", "blip2_vision")


@dataclass(frozen=True)
class ImageEncoderConfig:
    kind: str = "blip2_vision"
    name_or_path: str | None = "Salesforce/blip2-opt-2.7b"
    revision: str | None = None
    vit_config: dict | None = None         # kind=vit without name_or_path: ViTConfig kwargs
    seed: int = 0                          # random init of the demo ViT
    image_size: int | None = None          # default: the model config's image_size
    mean: tuple[float, ...] = CLIP_MEAN
    std: tuple[float, ...] = CLIP_STD
    pooled: bool = False                   # keep only the first ([CLS]) token of each frame
    n_frames: int = 8                      # frames encoded per video
    store: str = "views"                   # "views": what the BLIP-2 rows read (one seeded frame,
                                           # the mean of the n_frames); "frames": every frame
    batch_size: int = 16
    device: str = "auto"                   # "auto" (the GPU when there is one), "cpu", "cuda:1"
    fp16: bool = True                      # autocast on CUDA

    @classmethod
    def from_dict(cls, d: Mapping | None) -> "ImageEncoderConfig":
        """Strict: an unknown key is an error naming it (``media.image_encoder``)."""
        return from_mapping(cls, d, "media.image_encoder")

    def __post_init__(self) -> None:
        where = "media.image_encoder"
        if self.kind not in KINDS:
            raise ValueError(f"{where}.kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "blip2_vision" and not self.name_or_path:
            raise ValueError(f"{where}: kind blip2_vision needs name_or_path (a BLIP-2 checkpoint)")
        if self.kind == "vit" and not (self.name_or_path or self.vit_config):
            raise ValueError(f"{where}: kind vit needs name_or_path or vit_config")
        if self.n_frames < 1 or self.batch_size < 1:
            raise ValueError(f"{where}.n_frames and batch_size must be >= 1")
        if self.store not in STORES:
            raise ValueError(f"{where}.store must be 'views' or 'frames', got {self.store!r}")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError(f"{where}.mean and std need 3 values (RGB)")

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


def input_size(cfg: ImageEncoderConfig) -> int:
    """The square frame size the encoder reads, without loading any weights: ``image_size``,
    else the model config's (``vit_config``, or the checkpoint's ``config.json``)."""
    if cfg.image_size:
        return int(cfg.image_size)
    if cfg.kind == "vit" and not cfg.name_or_path:
        from transformers import ViTConfig

        return int(ViTConfig(**cfg.vit_config).image_size)
    from transformers import AutoConfig

    conf = AutoConfig.from_pretrained(cfg.name_or_path, revision=cfg.revision)
    return int(getattr(conf, "vision_config", conf).image_size)


class ImageEncoder:
    """uint8 RGB frames (N, H, W, 3) -> (N, T, D) float32 token features (T = 1 if pooled)."""

    def __init__(self, cfg: ImageEncoderConfig):
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
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


def extract_image_features(frames_uint8: np.ndarray, cfg: ImageEncoderConfig | Mapping,
                           encoder: ImageEncoder | None = None) -> np.ndarray:
    """(N, H, W, 3) uint8 frames -> (N, T, D) float32 features (T = 1 when ``pooled``)."""
    if not isinstance(cfg, ImageEncoderConfig):
        cfg = ImageEncoderConfig.from_dict(cfg)
    encoder = encoder or ImageEncoder(cfg)
    return encoder.encode(frames_uint8)
