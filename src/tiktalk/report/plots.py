"""Figure helpers for the report: the colours, :func:`save_figure`, a one-panel ours-vs-paper
bar chart (Tables 5 and 6) and a histogram. Table 3's chart is Table 3's
(:func:`tiktalk.report.tables.plot_table3`), so that editing Table 3 re-runs no other figure.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot, no GUI backend, no global
state) and written atomically as PNG.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tiktalk.io import atomic_path

OURS_COLOR = "#1f77b4"
PAPER_COLOR = "#bbbbbb"


def save_figure(fig: Figure, out_png: str | os.PathLike, dpi: int = 120) -> None:
    """Write ``fig`` as a PNG, atomically (Agg canvas)."""
    FigureCanvasAgg(fig)
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")


def plot_ours_vs_paper(labels: Sequence[str], ours: Sequence[float | None],
                       paper: Sequence[float | None], out_png: str | os.PathLike, *, title: str,
                       ylabel: str, figsize: tuple[float, float] = (6, 3.2), rotation: float = 0,
                       dpi: int = 120) -> None:
    """One panel: per label a bar for ours and one for the paper beside it (None: no bar; no
    paper bars at all when the paper has no value for any label)."""
    x = np.arange(len(labels))
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.subplots()
    ax.bar(x - 0.2, [v or 0 for v in ours], 0.4, label="ours", color=OURS_COLOR)
    if any(v is not None for v in paper):
        ax.bar(x + 0.2, [v or 0 for v in paper], 0.4, label="paper", color=PAPER_COLOR,
               edgecolor="#555555", linewidth=0.5)
    ax.set_xticks(x, labels, rotation=rotation, ha="right" if rotation else "center", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    fig.suptitle(title, fontsize=11)
    save_figure(fig, out_png, dpi=dpi)


def plot_histogram(values: Sequence[float], out_png: str | os.PathLike, *, bins: int | Sequence[float] | str = 30,
                   title: str = "", xlabel: str = "", ylabel: str = "count", log_y: bool = False,
                   integer_bins: bool = False, dpi: int = 120) -> dict:
    """Histogram of ``values`` as a PNG, with n / mean / median / max marked.

    ``integer_bins=True`` centres one bin on each integer (for counts such as frames per
    video). Returns the summary ``{"n", "mean", "median", "min", "max"}``. NaN/inf values
    raise ValueError; an empty input still writes a figure (saying "no values").
    """
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.size and not np.all(np.isfinite(arr)):
        raise ValueError(f"histogram {title or out_png}: values contain NaN or inf")
    summary = {"n": int(arr.size)}
    if arr.size:
        summary.update(mean=float(arr.mean()), median=float(np.median(arr)),
                       min=float(arr.min()), max=float(arr.max()))
    else:
        summary.update(mean=float("nan"), median=float("nan"), min=float("nan"), max=float("nan"))

    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    if arr.size:
        if integer_bins:
            lo, hi = np.floor(arr.min()), np.ceil(arr.max())
            bins = np.arange(lo - 0.5, hi + 1.5, 1.0)
        ax.hist(arr, bins=bins, color=OURS_COLOR, edgecolor="white", linewidth=0.5)
        ax.axvline(summary["mean"], color="#d62728", linestyle="--", linewidth=1,
                   label=f"mean {summary['mean']:.2f}")
        ax.axvline(summary["median"], color="#2ca02c", linestyle=":", linewidth=1.2,
                   label=f"median {summary['median']:.2f}")
        ax.legend(title=f"n = {summary['n']}", fontsize=8, title_fontsize=8)
    else:
        ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
    if log_y:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    save_figure(fig, out_png, dpi=dpi)
    return summary
