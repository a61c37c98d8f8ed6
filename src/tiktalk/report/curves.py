"""Training curves: train and validation loss against the optimizer step, from each training
job's own ``train_log.jsonl`` (:mod:`tiktalk.training.trainer`: a record every ``log_every``
steps with the recent train loss, and one closing each epoch with the epoch's mean train loss
and the validation loss).

* :func:`plot_row`: one row of Table 3 (a baseline), one colour per training seed: the logged
  train loss (thin line), the epoch means (dots) and the validation loss (squares, dashed).
* :func:`plot_overlay`: every row together, the first seed's run of each: epoch-mean train loss
  (left) and validation loss (right) against the step.

A job that resumed from a checkpoint appends to the same log; a step logged twice (the resumed
job repeats the interrupted epoch's steps) keeps its last record.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from matplotlib.figure import Figure

from tiktalk.io import read_jsonl
from tiktalk.report.plots import save_figure

TRAIN_LOG = "train_log.jsonl"          # tiktalk.training.trainer.LOG_NAME, beside model.pt
SEED_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


@dataclass(frozen=True)
class Curve:
    """One training's losses: (step, value) pairs in step order."""

    steps: tuple[tuple[int, float], ...]        # every record's train loss
    epochs: tuple[tuple[int, float], ...]       # epoch-closing records: mean train loss
    val: tuple[tuple[int, float], ...]          # epoch-closing records: validation loss


def read_curve(path: str | os.PathLike) -> Curve:
    """The curve of one ``train_log.jsonl``; a record without ``step`` or ``loss`` is an error
    naming the file and line."""
    records: dict[int, dict] = {}
    for lineno, rec in enumerate(read_jsonl(path), 1):
        if not isinstance(rec, dict) or not isinstance(rec.get("step"), int) or "loss" not in rec:
            raise ValueError(f"{path}:{lineno}: a training log record needs 'step' and 'loss'")
        records[rec["step"]] = rec
    ordered = [records[s] for s in sorted(records)]
    closing = [r for r in ordered if "samples" in r or r.get("val_loss") is not None]
    return Curve(tuple((r["step"], float(r["loss"])) for r in ordered if r["loss"] is not None),
                 tuple((r["step"], float(r["loss"])) for r in closing if r["loss"] is not None),
                 tuple((r["step"], float(r["val_loss"])) for r in closing if r.get("val_loss") is not None))


def _xy(points):
    return [p[0] for p in points], [p[1] for p in points]


def plot_row(curves: Mapping[str, Curve], out_png: str | os.PathLike, title: str, dpi: int = 110) -> None:
    """One row's curves, ``curves``: seed label (e.g. "seed 13") -> its run's curve."""
    fig = Figure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.subplots()
    for (name, curve), color in zip(curves.items(), SEED_COLORS * len(curves)):
        ax.plot(*_xy(curve.steps), color=color, linewidth=0.8, alpha=0.6, label=f"train, {name}")
        ax.plot(*_xy(curve.epochs), "o", color=color, markersize=2.5, label=f"train epoch mean, {name}")
        if curve.val:
            ax.plot(*_xy(curve.val), "s--", color=color, markersize=3, linewidth=1.2,
                    label=f"validation, {name}")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=10)
    save_figure(fig, out_png, dpi=dpi)


def plot_overlay(curves: Mapping[str, Curve], out_png: str | os.PathLike, title: str = "",
                 dpi: int = 110) -> None:
    """Every row's curve (``curves``: row name -> curve), train and validation side by side."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    train_ax, val_ax = fig.subplots(1, 2)
    cmap = [f"C{i}" for i in range(10)]
    styles = ("-", "--", ":")
    for i, (name, curve) in enumerate(curves.items()):
        style = {"color": cmap[i % 10], "linestyle": styles[(i // 10) % 3], "linewidth": 1.2}
        train_ax.plot(*_xy(curve.epochs), label=name, **style)
        if curve.val:
            val_ax.plot(*_xy(curve.val), label=name, **style)
    for ax, what in ((train_ax, "train loss (epoch mean)"), (val_ax, "validation loss")):
        ax.set_xlabel("optimizer step")
        ax.set_ylabel(what)
        ax.grid(alpha=0.3)
    val_ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(title or "Training curves of every row", fontsize=11)
    save_figure(fig, out_png, dpi=dpi)


def write_curves(models: Mapping[str, Mapping[str, str | os.PathLike]], labels: Mapping[str, str],
                 out_pngs: Mapping[str, str | os.PathLike],
                 out_overlay: str | os.PathLike) -> dict[str, dict[str, Curve]]:
    """The ``training_curves`` rule: ``models[baseline]`` maps a seed label ("seed 13") to that
    run's ``model.pt`` (its log lies beside it), the first one the baseline's main run; one
    figure per baseline (``out_pngs``) and the overlay of every baseline's main run."""
    curves = {b: {name: read_curve(Path(m).parent / TRAIN_LOG) for name, m in runs.items()}
              for b, runs in models.items()}
    for b, out in out_pngs.items():
        plot_row(curves[b], out, f"{labels.get(b, b)} ({b}): loss against step")
    plot_overlay({labels.get(b, b): next(iter(c.values())) for b, c in curves.items()}, out_overlay)
    return curves
