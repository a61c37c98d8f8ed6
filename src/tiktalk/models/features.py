"""Per-dimension feature standardisation with training-set statistics (Maria and BLIP-2).

Features of one dataset from a frozen CNN/ViT share a large common component (ReLU outputs are
all positive; a demo video is mostly background), so what tells videos apart is a small
deviation around it; standardising makes that deviation the input. The statistics are buffers,
saved with the model's weights.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class FeatureStandardizer(nn.Module):
    """``(x - mean) / std`` per feature dimension; identity until :meth:`fit` sets the stats."""

    def __init__(self, dim: int, name: str = "features"):
        super().__init__()
        self.name = name
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @torch.no_grad()
    def fit(self, arrays, min_std: float = 1e-3) -> int:
        """Set mean/std from (..., dim) arrays (e.g. every training video's frames); ``None`` and
        empty arrays are skipped. Dimensions whose std is at most ``min_std`` times the
        features' RMS (all dimensions together) are only centred: the floor is relative to the
        features' own scale, so constant dimensions stay put whatever the encoder's output
        scale, while small-but-informative ones are rescaled (a random-init VGGish gives every
        dimension a std of ~3e-4 around ~8e-3: an absolute floor of 1e-3 left all of them
        at ~1e-4, below the model's position embeddings).
        Returns the number of rows used (0: statistics left as they were)."""
        dim = self.mean.shape[0]
        rows = []
        for a in arrays:
            if a is None or np.asarray(a).size == 0:
                continue
            a = np.asarray(a, dtype=np.float64)
            if a.shape[-1] != dim:
                raise ValueError(f"{self.name} features have dim {a.shape[-1]}, the model expects {dim}")
            rows.append(a.reshape(-1, dim))
        if not rows:
            return 0
        x = np.concatenate(rows, 0)
        std = x.std(0)
        floor = min_std * float(np.sqrt(np.mean(x * x)))
        self.mean.copy_(torch.from_numpy(x.mean(0)))
        self.std.copy_(torch.from_numpy(np.where(std <= floor, 1.0, std)))
        return int(x.shape[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)
