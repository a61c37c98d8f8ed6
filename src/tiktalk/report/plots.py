"""Figures for the report: Table 3 as grouped bars (ours vs paper), a one-panel ours-vs-paper
bar chart (Tables 5 and 6) and a histogram helper.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot, no GUI backend, no global
state) and written atomically as PNG.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tiktalk.io import atomic_path
from tiktalk.report.paper import COLUMN_FOR_KEY, TABLE3_METRIC_KEYS
from tiktalk.report.tables import SOURCE_OURS, RowSpread, table3_rows

OURS_COLOR = "#1f77b4"
PAPER_COLOR = "#bbbbbb"


def save_figure(fig: Figure, out_png: str | os.PathLike, dpi: int = 120) -> None:
    """Write ``fig`` as a PNG, atomically (Agg canvas)."""
    FigureCanvasAgg(fig)
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")


def plot_table3(metrics_by_baseline: Mapping[str, Mapping], labels: Mapping[str, str],
                out_png: str | os.PathLike, metrics: Sequence[str] = TABLE3_METRIC_KEYS,
                title: str | None = None, dpi: int = 120,
                spread: Mapping[str, RowSpread] | None = None) -> None:
    """Grouped bar chart: one panel per metric, per baseline run a bar for ours and one for the
    paper's Table 3 row it is labelled with (no paper bar for an unlabelled run); with
    ``spread``, our bars carry their bootstrap intervals as error bars.

    Same validation as :func:`tiktalk.report.tables.build_table3` (missing metric keys raise
    errors naming the baseline).
    """
    unknown = [m for m in metrics if m not in COLUMN_FOR_KEY]
    if unknown:
        raise ValueError(f"metrics {unknown} are not Table 3 metrics ({', '.join(TABLE3_METRIC_KEYS)})")
    rows = table3_rows(metrics_by_baseline, labels, spread=spread)
    ours = [r for r in rows if r["source"] == SOURCE_OURS]
    paper = {r["paper_row"]: r for r in rows if r["source"] != SOURCE_OURS}
    names = [r["paper_row"] or r["baseline"] for r in ours]   # the paper's labels
    x = np.arange(len(names))
    width = 0.4

    ncols = min(4, len(metrics))
    nrows = int(np.ceil(len(metrics) / ncols))
    fig = Figure(figsize=(3.2 * ncols + 0.5, 2.9 * nrows + 0.6), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, key in zip(axes, metrics):
        col = COLUMN_FOR_KEY[key]
        ours_v = np.array([r[col] for r in ours])
        paper_v = np.array([paper[r["paper_row"]][col] if r["paper_row"] in paper else np.nan for r in ours])
        yerr = None
        if all(r[f"{col}_low"] is not None for r in ours):
            yerr = np.array([[max(0.0, v - r[f"{col}_low"]) for v, r in zip(ours_v, ours)],
                             [max(0.0, r[f"{col}_high"] - v) for v, r in zip(ours_v, ours)]])
        ax.bar(x - width / 2, ours_v, width, label="ours", color=OURS_COLOR, yerr=yerr,
               error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "#333333"})
        ax.bar(x + width / 2, paper_v, width, label="paper", color=PAPER_COLOR, edgecolor="#555555",
               linewidth=0.5)
        ax.set_title(col)
        ax.set_xticks(x, names, rotation=45, ha="right", fontsize=8)
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    for ax in axes[len(metrics):]:
        ax.set_axis_off()
    handles, legend_labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, legend_labels, loc="outside upper right", ncols=2, fontsize=9)
    fig.suptitle(title or "Table 3: ours vs paper (x100)", fontsize=11)
    save_figure(fig, out_png, dpi=dpi)


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
