"""Frame features: a torchvision classification model with its last linear layer (the
classifier) removed, ImageNet normalisation. The paper's is ResNet-101 (global-average-pooled
features, 2048-d; 512-d for resnet18/34); any model of ``torchvision.models`` works the same
way (``efficientnet_b0``, ``convnext_tiny``, ``vit_b_16``...): the features are the input of its
last ``nn.Linear``, and the feature dimension follows (Maria reads it from the shards).

Weights come from a local ``state_dict`` file (e.g. torchvision's ``resnet101-63fe2227.pth``;
the classifier's keys are ignored; its sha256 goes into the weights description) or, only when
asked for (``random_init``), a seeded random init. Nothing is ever downloaded.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from tiktalk.io import fingerprint

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BOTTLENECK_RESNETS = ("resnet50", "resnet101", "resnet152")


def backbones() -> list[str]:
    """The names ``media.extract.backbone`` may take: torchvision's classification models."""
    return sorted(torchvision.models.list_models(module=torchvision.models))


def strip_classifier(model: nn.Module) -> tuple[str, int]:
    """Replace the model's last ``nn.Linear`` (its classifier head) by the identity, in place;
    (that module's name, e.g. ``fc`` or ``classifier.1``, and its input width: the feature dim)."""
    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no nn.Linear classifier head to remove")
    name, head = linears[-1]
    parent_name, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, attr, nn.Identity())
    return name, head.in_features


def build_backbone(name: str, weights: str | Path | None = None, seed: int = 0,
                   random_init: bool = False) -> tuple[nn.Module, int, str]:
    """(model without its classifier, feature dim, weights description with the file's sha256).

    Random init only when asked for (``random_init``, config ``media.extract.init: random``);
    no weights and no request is an error, never a silent fallback.
    """
    if name not in backbones():
        raise ValueError(f"unknown backbone {name!r}; choose one of torchvision's classification "
                         f"models: {', '.join(backbones())}")
    if weights and random_init:
        raise ValueError(f"visual backbone {name}: both backbone_weights ({weights}) and random init requested")
    if not weights and not random_init:
        raise ValueError(f"visual backbone {name}: no backbone_weights given (media.extract.backbone_weights: "
                         f"the ImageNet checkpoint, fetched by `snakemake --cores 1 fetch_weights`); "
                         f"random init only with media.extract.init: random")
    ctor = getattr(torchvision.models, name)
    # torchvision's default random init lets activations grow through the 33 bottleneck
    # blocks of resnet101 (pooled features up to ~1.7e5: inf in float16); for random init of
    # the bottleneck nets the residual branches start at zero (zero_init_residual), which keeps
    # them O(1). Loaded weights overwrite all of this.
    extra = {"zero_init_residual": True} if weights is None and name in BOTTLENECK_RESNETS else {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ctor(weights=None, **extra)
    head, dim = strip_classifier(model)
    if weights:
        state = torch.load(weights, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
            state = state["state_dict"]
        state = {k.removeprefix("module."): v for k, v in state.items()}
        state = {k: v for k, v in state.items() if not k.startswith(head + ".")}
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(f"{weights}: state_dict does not fit {name}: missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]}")
        source = f"{weights} sha256:{fingerprint(weights)['sha256']}"
        log.info("visual backbone %s: weights from %s", name, source)
    else:
        source = f"random init (seed {seed})"
        log.info("visual backbone %s: random init as configured (seed %d)", name, seed)
    return model, dim, source


class VisualEncoder:
    """uint8 RGB frames (N, H, W, 3) -> (N, dim) float32 pooled features, in batches."""

    def __init__(self, backbone: str = "resnet18", weights: str | Path | None = None,
                 input_size: int = 224, device: str = "cpu", batch_size: int = 32, seed: int = 0,
                 random_init: bool = False):
        self.device = torch.device(device)
        self.model, self.dim, self.weights_source = build_backbone(backbone, weights, seed, random_init)
        self.model.eval().to(self.device)
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.input_size = int(input_size)
        self.batch_size = int(batch_size)
        self.mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.to(self.device).permute(0, 3, 1, 2).float().div_(255.0)
        if x.shape[-2:] != (self.input_size, self.input_size):
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear",
                              align_corners=False, antialias=True)
        return (x - self.mean) / self.std

    @torch.no_grad()
    def encode(self, frames: np.ndarray | torch.Tensor) -> np.ndarray:
        frames = torch.as_tensor(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be (N, H, W, 3) uint8, got {tuple(frames.shape)}")
        if len(frames) == 0:
            return np.zeros((0, self.dim), np.float32)
        outs = []
        for i in range(0, len(frames), self.batch_size):
            x = self.preprocess(frames[i:i + self.batch_size])
            if self.device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
                with torch.autocast("cuda", dtype=torch.float16):
                    y = self.model(x)
            else:
                y = self.model(x)
            outs.append(y.float().cpu().numpy())
        return np.concatenate(outs)
