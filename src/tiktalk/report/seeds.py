"""Table 3's rows over training seeds and bootstrap resamples.

A row of Table 3 (a baseline) is trained once per seed of the config's ``seeds``
(:func:`tiktalk.workflow.run_name`: the run of the config's ``seed`` keeps the baseline's name,
another seed's run is ``<baseline>.seed<S>``). For each metric the row shows:

* the value: the mean of its runs' corpus scores over the seeds (with one seed, the run's
  corpus score itself, bit for bit);
* the bootstrap interval: the percentile interval of that mean over the resamples of the test
  dialogues, every run scored on the same resampled dialogues
  (:mod:`tiktalk.metrics.bootstrap`); it measures how much the test set's sample moves the
  number, for these trained models;
* the spread: the standard deviation of the runs' scores over the seeds (two or more seeds);
  it measures how much another training run moves the number.
"""

from __future__ import annotations

import statistics as stats_
from typing import Mapping, Sequence

import numpy as np

from tiktalk.metrics.bootstrap import DEFAULT_LEVEL, Replicates, interval
from tiktalk.report.paper import TABLE3_METRIC_KEYS
from tiktalk.report.tables import RowSpread


def seed_mean(values: Sequence[float]) -> float:
    """The mean over seeds (one seed: the value itself)."""
    return sum(values) / len(values)


def seed_mean_replicates(rep: Replicates, runs: Sequence[str], key: str) -> np.ndarray:
    """Per resample, the mean of ``runs``' scores on ``key``."""
    return sum(rep.values(r, key) for r in runs) / len(runs)


def rows_over_seeds(metrics_by_run: Mapping[str, Mapping], runs_by_baseline: Mapping[str, Sequence[str]],
                    rep: Replicates, level: float = DEFAULT_LEVEL,
                    keys: Sequence[str] = TABLE3_METRIC_KEYS) -> tuple[dict[str, dict], dict[str, RowSpread]]:
    """``({baseline: metrics}, {baseline: RowSpread})`` of Table 3 from its runs' metrics
    (``metrics_by_run``) and the bootstrap replicates of the same runs."""
    values, spread = {}, {}
    for baseline, runs in runs_by_baseline.items():
        missing = [r for r in runs if r not in metrics_by_run]
        if not runs or missing:
            raise ValueError(f"baseline {baseline!r}: no metrics of run(s) {missing or runs}")
        row = {k: seed_mean([metrics_by_run[r][k] for r in runs]) for k in keys}
        row["n"] = metrics_by_run[runs[0]].get("n")
        low, high, sd = {}, {}, {}
        for k in keys:
            low[k], high[k] = interval(seed_mean_replicates(rep, runs, k), level)
            if len(runs) > 1:
                sd[k] = stats_.stdev(float(metrics_by_run[r][k]) for r in runs)
        values[baseline] = row
        spread[baseline] = RowSpread(low, high, sd, len(runs))
    return values, spread
