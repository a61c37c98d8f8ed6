"""Bootstrap over test dialogues: intervals on corpus scores, paired differences, Holm.

Resamples (:func:`resample_indices`): ``resamples`` draws of N dialogue indices with
replacement from ``numpy.random.default_rng(seed)``, one (B, N) matrix. Every system scored on
the same split is resampled with the SAME matrix, so the difference of two systems on resample
b compares them on the same dialogues (a paired bootstrap). The corpus score of a resample
comes from per-dialogue statistics (:mod:`tiktalk.metrics.statistics`), not from running the
scorers again: 1,000 resamples of every metric cost well under a second per system here.

Intervals: the percentile interval, the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles
of the resampled values (numpy's linear interpolation).

Dist-n is centred first (:func:`centred`): a dialogue drawn twice adds its n-grams to the
total but no distinct n-gram, so every resample's Dist-n falls below the corpus's, by an amount
that differs between systems (more for a diverse one: on the demo up to 3 points, the whole
interval below the score). Its resampled values are shifted by that bias (their mean minus the
corpus score), which leaves their spread, and so the intervals' widths and the p-values, as
they are. The other metrics are means or ratios of sums; their resamples are not shifted.

Paired comparison (:func:`compare`) of systems a and b on one metric: the difference of their
corpus scores, its percentile interval over the resampled differences, and a two-sided
p-value from the bootstrap standard error: ``z = difference / sd(resampled differences)``,
``p = erfc(|z| / sqrt 2)``. The normal form gives p-values below ``1 / resamples`` (a count of
resamples below 0 cannot), which a correction for many comparisons needs. Where the resampled
differences are close to normal it agrees with the interval: p < 1 - level exactly when the
interval excludes 0, up to the interval's own noise.

Holm (:func:`holm`): the step-down correction of m p-values, controlling the family-wise error
rate; ``p_holm[i] = max over j <= rank(i) of min(1, (m - j + 1) * p_(j))``.

Replicates file (``results/statistics/bootstrap_{split}.npz``, :data:`REPLICATES_VERSION`; written
by :func:`write_replicates` for every run of Table 3): ``version``, ``meta`` (str: JSON
``{"resamples", "seed", "n", "runs": [...], "keys": [...]}``), ``points`` float64 (R, K): each
run's corpus scores, and ``replicates`` float64 (R, B, K), NaN where a run has no such metric.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from tiktalk.formats import METRIC_KEYS
from tiktalk.metrics.statistics import (
    CorpusStats, corpus_scores, identity, load_npz, read_stats, save_npz)
from tiktalk.settings import SettingsError, from_mapping

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 0
DEFAULT_LEVEL = 0.95
REPLICATES_VERSION = 1


@dataclass(frozen=True)
class BootstrapSettings:
    """The config's ``evaluation.bootstrap`` block."""

    resamples: int = DEFAULT_RESAMPLES
    seed: int = DEFAULT_SEED
    level: float = DEFAULT_LEVEL

    def __post_init__(self):
        if isinstance(self.resamples, bool) or not isinstance(self.resamples, int) or self.resamples < 2:
            raise SettingsError(f"evaluation.bootstrap.resamples must be an integer >= 2, got {self.resamples!r}")
        if not 0 < self.level < 1:
            raise SettingsError(f"evaluation.bootstrap.level must be in (0, 1), got {self.level!r}")

    @classmethod
    def from_config(cls, evaluation: Mapping | None) -> "BootstrapSettings":
        return from_mapping(cls, (evaluation or {}).get("bootstrap"), "evaluation.bootstrap")


#: metrics whose resampled values are centred on the corpus score (module docstring)
CENTRED_KEYS = ("dist_1", "dist_2", "dist_3")


def centred(values: np.ndarray, point: float) -> np.ndarray:
    """Resampled values shifted so that their mean is the corpus score ``point``."""
    return values - (float(np.mean(values)) - point)


def resampled_scores(stats: CorpusStats, idx: np.ndarray) -> dict[str, np.ndarray]:
    """:func:`tiktalk.metrics.statistics.corpus_scores` of the resamples ``idx``, Dist-n
    centred on the corpus score (:data:`CENTRED_KEYS`)."""
    reps = corpus_scores(stats, idx)
    points = corpus_scores(stats, identity(stats.n))
    return {k: centred(v, float(points[k][0])) if k in CENTRED_KEYS else v for k, v in reps.items()}


def resample_indices(n: int, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> np.ndarray:
    """(resamples, n) dialogue indices drawn with replacement (module docstring)."""
    if n < 1 or resamples < 1:
        raise ValueError(f"bootstrap needs n >= 1 dialogues and >= 1 resamples, got {n}, {resamples}")
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n), dtype=np.int64)


def interval(values: Sequence[float], level: float = DEFAULT_LEVEL) -> tuple[float, float]:
    """The percentile interval of resampled values."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(np.asarray(values, dtype=np.float64), [tail, 100 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class Comparison:
    """a - b on one metric: the difference, its interval and two-sided p (module docstring)."""

    difference: float
    low: float
    high: float
    p: float


def two_sided_p(difference: float, resampled: np.ndarray) -> float:
    """p of the difference from the sd of its resampled values (1 when both are 0: no
    difference at all; 0 when they never vary but the difference is not 0)."""
    sd = float(np.std(resampled, ddof=1)) if len(resampled) > 1 else 0.0
    if sd == 0.0 or not math.isfinite(sd):
        return 1.0 if difference == 0 else 0.0
    return math.erfc(abs(difference) / sd / math.sqrt(2))


def compare(point_a: float, point_b: float, reps_a: np.ndarray, reps_b: np.ndarray,
            level: float = DEFAULT_LEVEL) -> Comparison:
    """The paired comparison of a and b, their replicates over the same resamples."""
    reps_a, reps_b = np.asarray(reps_a, dtype=np.float64), np.asarray(reps_b, dtype=np.float64)
    if reps_a.shape != reps_b.shape or reps_a.ndim != 1:
        raise ValueError(f"paired replicates must be two vectors over the same resamples, got "
                         f"{reps_a.shape} and {reps_b.shape}")
    diffs = reps_a - reps_b
    difference = float(point_a - point_b)
    low, high = interval(diffs, level)
    return Comparison(difference, low, high, two_sided_p(difference, diffs))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input's order."""
    p = [float(x) for x in pvalues]
    order = sorted(range(len(p)), key=lambda i: p[i])
    out = [0.0] * len(p)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        out[i] = running
    return out


# ------------------------------------------------------------------ one system, any outputs


def bootstrap_stats(stats: CorpusStats, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                    level: float = DEFAULT_LEVEL) -> dict[str, tuple[float, float]]:
    """``{metric: (low, high)}``: the percentile intervals of one system's corpus scores."""
    reps = resampled_scores(stats, resample_indices(stats.n, resamples, seed))
    return {k: interval(v, level) for k, v in reps.items()}


# ------------------------------------------------------------------ many runs, one file


@dataclass(frozen=True)
class Replicates:
    """Every run's corpus scores and their resampled values (module docstring)."""

    resamples: int
    seed: int
    n: int
    runs: tuple[str, ...]
    keys: tuple[str, ...]
    points: np.ndarray          # (R, K)
    replicates: np.ndarray      # (R, B, K)

    def _at(self, run: str, key: str) -> tuple[int, int]:
        if run not in self.runs:
            raise KeyError(f"no bootstrap replicates of run {run!r} (runs: {', '.join(self.runs)})")
        if key not in self.keys:
            raise KeyError(f"no metric {key!r} in the bootstrap replicates")
        return self.runs.index(run), self.keys.index(key)

    def point(self, run: str, key: str) -> float:
        r, k = self._at(run, key)
        return float(self.points[r, k])

    def values(self, run: str, key: str) -> np.ndarray:
        r, k = self._at(run, key)
        return self.replicates[r, :, k]


def replicates_of(stats_by_run: Mapping[str, CorpusStats], resamples: int = DEFAULT_RESAMPLES,
                  seed: int = DEFAULT_SEED, where: Mapping[str, str] | None = None) -> Replicates:
    """The replicates of every run on one resample matrix; the runs must cover the same
    dialogues in the same order (``where`` names each run's file in the error)."""
    if not stats_by_run:
        raise ValueError("no runs to bootstrap")
    where = where or {}
    runs = list(stats_by_run)
    first = stats_by_run[runs[0]]
    for run in runs[1:]:
        if stats_by_run[run].ids != first.ids:
            raise ValueError(f"{where.get(run, run)}: its dialogues differ from those of "
                             f"{where.get(runs[0], runs[0])}; a paired bootstrap needs the same ones")
    idx = resample_indices(first.n, resamples, seed)
    keys = METRIC_KEYS
    points = np.full((len(runs), len(keys)), np.nan)
    reps = np.full((len(runs), resamples, len(keys)), np.nan)
    for r, run in enumerate(runs):
        stats = stats_by_run[run]
        for k, v in corpus_scores(stats, identity(stats.n)).items():
            points[r, keys.index(k)] = v[0]
        for k, v in resampled_scores(stats, idx).items():
            reps[r, :, keys.index(k)] = v
    return Replicates(resamples, seed, first.n, tuple(runs), keys, points, reps)


def write_replicates(stats_paths: Mapping[str, str | os.PathLike], out_path: str | os.PathLike,
                     resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> Replicates:
    """:func:`replicates_of` the runs' statistics files, written to ``out_path``."""
    stats = {run: read_stats(p) for run, p in stats_paths.items()}
    rep = replicates_of(stats, resamples, seed, where={r: str(p) for r, p in stats_paths.items()})
    meta = {"resamples": rep.resamples, "seed": rep.seed, "n": rep.n, "runs": list(rep.runs),
            "keys": list(rep.keys)}
    save_npz(out_path, {"version": np.int64(REPLICATES_VERSION), "meta": np.str_(json.dumps(meta)),
                        "points": rep.points, "replicates": rep.replicates})
    return rep


def read_replicates(path: str | os.PathLike) -> Replicates:
    data = load_npz(path, REPLICATES_VERSION, "bootstrap replicates")
    meta = json.loads(str(data["meta"]))
    return Replicates(int(meta["resamples"]), int(meta["seed"]), int(meta["n"]), tuple(meta["runs"]),
                      tuple(meta["keys"]), data["points"], data["replicates"])
