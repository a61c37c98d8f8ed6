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
    def fit(self, arrays, min_std: float = 1e-3, weights=None) -> int:
        """Set mean/std from (..., dim) arrays (e.g. every training video's frames) in ONE
        streaming pass with float64 accumulators (Chan et al.'s pairwise update of count, mean
        and sum of squared deviations): memory is a few ``dim``-vectors whatever the number of
        arrays, and the result equals the statistics of all rows concatenated (to float64
        rounding). ``None`` and empty arrays are skipped. ``weights`` (parallel to ``arrays``,
        default 1): an array with weight w counts as w copies of its rows, so a video read once
        stands for every training example that uses it.

        Dimensions whose std is at most ``min_std`` times the features' RMS (all dimensions
        together) are only centred: the floor is relative to the features' own scale, so
        constant dimensions stay put whatever the encoder's output scale, while
        small-but-informative ones are rescaled (a random-init VGGish gives every dimension a
        std of ~3e-4 around ~8e-3: an absolute floor of 1e-3 left all of them at ~1e-4, below
        the model's position embeddings).
        Returns the number of (weighted) rows used (0: statistics left as they were)."""
        dim = self.mean.shape[0]
        stats = RunningMoments(dim)
        pairs = zip(arrays, weights, strict=True) if weights is not None else ((a, 1) for a in arrays)
        for a, w in pairs:
            if a is None or np.asarray(a).size == 0 or not w:
                continue
            a = np.asarray(a)
            if a.shape[-1] != dim:
                raise ValueError(f"{self.name} features have dim {a.shape[-1]}, the model expects {dim}")
            stats.add(a.reshape(-1, dim), w)
        if not stats.n:
            return 0
        mean, std = stats.mean, stats.std
        floor = min_std * stats.rms
        self.mean.copy_(torch.from_numpy(mean))
        self.std.copy_(torch.from_numpy(np.where(std <= floor, 1.0, std)))
        return int(stats.n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)


class RunningMoments:
    """Count, mean and sum of squared deviations per dimension over blocks of rows, in float64,
    merged block by block (Chan, Golub and LeVeque's update: stable where sum-of-squares
    accumulation is not)."""

    def __init__(self, dim: int):
        self.n = 0.0
        self._mean = np.zeros(dim, np.float64)
        self._m2 = np.zeros(dim, np.float64)

    def add(self, rows: np.ndarray, weight: float = 1) -> None:
        """Add (k, dim) rows, each counted ``weight`` times."""
        x = np.asarray(rows, np.float64)
        if not len(x):
            return
        nb = float(len(x)) * weight
        mb = x.mean(0)
        m2b = ((x - mb) ** 2).sum(0) * weight
        n = self.n + nb
        delta = mb - self._mean
        self._mean += delta * (nb / n)
        self._m2 += m2b + delta * delta * (self.n * nb / n)
        self.n = n

    @property
    def mean(self) -> np.ndarray:
        return self._mean.copy()

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation (``np.std``'s default, ddof 0)."""
        return np.sqrt(np.maximum(self._m2 / max(self.n, 1.0), 0.0))

    @property
    def rms(self) -> float:
        """sqrt(mean of x**2) over every value of every dimension."""
        return float(np.sqrt(np.mean(self._m2 / max(self.n, 1.0) + self._mean ** 2)))
