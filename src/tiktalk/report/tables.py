"""Table 3 of our runs next to the paper's numbers: CSV, Markdown and LaTeX, and its chart.

``metrics_by_baseline`` maps a baseline run name to its metrics json (formats "Metrics":
keys bleu_1..bleu_4, meteor, rouge_l, cider, dist_1..dist_3, all x100, and n). ``labels`` maps
a run name to the paper's Table 3 row it reproduces (e.g. ``{"maria_c3kg": "Maria+C3KG"}``);
a run without a label is reported without a paper counterpart.

Layout: first block ``source = "ours"`` (one row per run, in the paper's row order, unlabelled
runs last in the given order), then block ``source = "paper"`` with the paper's own numbers
for the rows the runs are labelled with (or all rows with ``all_paper_rows=True``). Metrics are
in the paper's column order, 2 decimals.

Missing rows: ``missing`` maps a run without metrics to the reason (e.g. its training failed);
its row has empty metric cells and the reason in the ``note`` column (CSV), a Note column
(Markdown) or the caption (LaTeX). The CSV always has the ``note`` column (empty when complete).

Uncertainty: ``spread`` maps a baseline to its :class:`RowSpread` (from
:mod:`tiktalk.report.seeds`): each metric's bootstrap interval and, over two or more seeds, the
standard deviation over the seeds (the value is then the mean over the seeds). The CSV always
has the columns ``<metric>_low``, ``<metric>_high``, ``<metric>_sd`` and ``seeds`` (empty when
not computed); Markdown and LaTeX cells read ``4.31 [3.90, 4.70]``, or ``4.31 ± 0.12 [3.90,
4.70]`` with seeds.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pandas as pd

from tiktalk.io import read_json, write_text_atomic
from tiktalk.report.paper import (
    COLUMN_FOR_KEY,
    ROW_TYPE,
    TABLE3,
    TABLE3_COLUMNS,
    TABLE3_METRIC_KEYS,
    TABLE3_ROWS,
)
from tiktalk.report.render import (
    MISSING,
    Column,
    best_cells,
    latex_bold,
    latex_escape,
    latex_table,
    markdown_table,
    to_csv,
)

SOURCE_OURS = "ours"
SOURCE_PAPER = "paper"
PAPER_CITATION = "TikTalk, arXiv 2301.05880, Table 3"
UNCERTAINTY_COLUMNS = tuple(f"{c}_{part}" for part in ("low", "high", "sd") for c in TABLE3_COLUMNS)
TABLE_COLUMNS = (("source", "type", "baseline", "paper_row") + TABLE3_COLUMNS + ("n", "note")
                 + UNCERTAINTY_COLUMNS + ("seeds",))
# every metric: higher is better (the best of each column is bold in LaTeX)
METRIC_COLUMNS = tuple(Column(c, c, better="high") for c in TABLE3_COLUMNS)
DEFAULT_LATEX_CAPTION = (
    "Automatic metrics: our runs, and the numbers reported in the paper's Table 3 (the TikTalk "
    "test set). All values $\\times$100.")


@dataclass(frozen=True)
class RowSpread:
    """One row's uncertainty, by metric key: the bootstrap interval (``low``, ``high``), the
    standard deviation over seeds (``sd``, empty with one seed) and the number of seeds."""

    low: Mapping[str, float]
    high: Mapping[str, float]
    sd: Mapping[str, float] = field(default_factory=dict)
    seeds: int = 1


def load_metrics(paths_by_baseline: Mapping[str, str | os.PathLike]) -> dict[str, dict]:
    """Read ``{baseline: metrics json path}`` into ``{baseline: metrics dict}``."""
    out = {}
    for name, path in paths_by_baseline.items():
        obj = read_json(path)
        if not isinstance(obj, dict):
            raise ValueError(f"{path}: metrics of baseline {name!r} must be a JSON object")
        out[name] = obj
    return out


def _metric_values(name: str, metrics: Mapping) -> dict[str, float]:
    if not isinstance(metrics, Mapping):
        raise TypeError(f"baseline {name!r}: metrics must be a dict, got {type(metrics).__name__}")
    missing = [k for k in TABLE3_METRIC_KEYS if k not in metrics]
    if missing:
        raise KeyError(f"baseline {name!r}: metrics lack key(s) {', '.join(missing)}")
    values = {}
    for key in TABLE3_METRIC_KEYS:
        v = metrics[key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"baseline {name!r}: metric {key} = {v!r} is not a finite number")
        values[key] = float(v)
    return values


def table3_rows(metrics_by_baseline: Mapping[str, Mapping],
                labels: Mapping[str, str], all_paper_rows: bool = False,
                missing: Mapping[str, str] | None = None,
                spread: Mapping[str, RowSpread] | None = None) -> list[dict]:
    """The table as a list of row dicts (keys :data:`TABLE_COLUMNS`), values as floats (None
    in the rows of ``missing``, whose ``note`` is the reason, and where ``spread`` has none).

    A run whose label is not a paper row (a system of your own) comes after the paper's rows,
    without a paper row beside it. Raises KeyError naming the baseline when a metric key is
    missing, ValueError for a non-numeric metric. Labels of runs neither in
    ``metrics_by_baseline`` nor in ``missing`` are ignored (a config may label more runs than
    were made).
    """
    missing = {name: str(why) for name, why in (missing or {}).items() if name not in metrics_by_baseline}
    if not metrics_by_baseline and not missing:
        raise ValueError("no baseline metrics to tabulate")
    position = {row: i for i, row in enumerate(TABLE3_ROWS)}
    given = list(metrics_by_baseline) + list(missing)
    names = sorted(given, key=lambda n: (position.get(labels.get(n), len(position)), given.index(n)))

    spread = spread or {}
    rows = []
    for name in names:
        label = labels.get(name, "")
        if name in missing:
            values, n, note = dict.fromkeys(TABLE3_METRIC_KEYS), None, missing[name]
        else:
            values, n, note = _metric_values(name, metrics_by_baseline[name]), metrics_by_baseline[name].get("n"), ""
        rows.append({
            "source": SOURCE_OURS, "type": ROW_TYPE.get(label, ""), "baseline": name,
            "paper_row": label, **{col: values[key] for key, col in zip(TABLE3_METRIC_KEYS, TABLE3_COLUMNS)},
            "n": int(n) if isinstance(n, (int, float)) and not isinstance(n, bool) else None,
            "note": note, **_spread_cells(spread.get(name) if name not in missing else None),
        })
    wanted = set(TABLE3_ROWS) if all_paper_rows else {labels[n] for n in names if n in labels}
    for row in TABLE3_ROWS:
        if row in wanted:
            rows.append({
                "source": SOURCE_PAPER, "type": ROW_TYPE[row], "baseline": "", "paper_row": row,
                **{col: TABLE3[row][key] for key, col in zip(TABLE3_METRIC_KEYS, TABLE3_COLUMNS)},
                "n": None, "note": "", **_spread_cells(None),
            })
    return rows


def _spread_cells(spread: RowSpread | None) -> dict:
    cells = dict.fromkeys(UNCERTAINTY_COLUMNS)
    cells["seeds"] = None
    if spread is not None:
        for key, col in zip(TABLE3_METRIC_KEYS, TABLE3_COLUMNS):
            cells[f"{col}_low"] = spread.low.get(key)
            cells[f"{col}_high"] = spread.high.get(key)
            cells[f"{col}_sd"] = spread.sd.get(key)
        cells["seeds"] = spread.seeds
    return cells


def _fmt(v, missing: str = "") -> str:
    return missing if v is None else f"{v:.2f}"


def cell_text(row: Mapping, col: str, missing: str = "", pm: str = "±") -> str:
    """A metric cell with its uncertainty: ``4.31``, ``4.31 [3.90, 4.70]`` or ``4.31 ± 0.12
    [3.90, 4.70]`` (``pm``: the plus-minus sign of the output format)."""
    text = _fmt(row[col], missing)
    if row[col] is None:
        return text
    if row.get(f"{col}_sd") is not None:
        text += f" {pm} {row[f'{col}_sd']:.2f}"
    if row.get(f"{col}_low") is not None:
        text += f" [{row[f'{col}_low']:.2f}, {row[f'{col}_high']:.2f}]"
    return text


def to_csv_text(rows: list[dict]) -> str:
    return to_csv(TABLE_COLUMNS, rows, dict.fromkeys(TABLE3_COLUMNS + UNCERTAINTY_COLUMNS, "{:.2f}"))


def to_markdown(rows: list[dict], caption: str | None = None) -> str:
    """Two GitHub-flavoured Markdown tables: our runs, then the paper's numbers."""
    out = [f"{caption}\n"] if caption else []
    ours = [r for r in rows if r["source"] == SOURCE_OURS]
    paper = [r for r in rows if r["source"] == SOURCE_PAPER]
    notes = any(r["note"] for r in ours)   # a Note column only when a row is missing
    metrics = "r" * len(TABLE3_COLUMNS)
    out.append("### Ours\n")
    out.append(markdown_table(
        ("Type", "Baseline", "Paper row") + TABLE3_COLUMNS + (("Note",) if notes else ()),
        ([r["type"], r["baseline"], r["paper_row"], *(cell_text(r, c, MISSING["md"]) for c in TABLE3_COLUMNS),
          *([r["note"]] if notes else [])] for r in ours),
        "lll" + metrics + "l" * notes))
    if paper:
        out += ["", f"### Paper (reported: {PAPER_CITATION})\n",
                markdown_table(("Type", "Method") + TABLE3_COLUMNS,
                               ([r["type"], r["paper_row"], *(_fmt(r[c]) for c in TABLE3_COLUMNS)]
                                for r in paper), "ll" + metrics)]
    return "\n".join(out) + "\n"


def to_latex(rows: list[dict], caption: str | None = None, label: str = "tab:table3") -> str:
    """A booktabs ``table`` with our runs, then a block of the paper's numbers; ``caption`` is
    plain text (escaped here)."""
    sections = []
    for source, title in ((SOURCE_OURS, "Ours"), (SOURCE_PAPER, f"Paper (reported: {PAPER_CITATION})")):
        block = [r for r in rows if r["source"] == source]
        if not block:
            continue
        # the best value of each column is bold, in our block and in the paper's separately
        best = best_cells(METRIC_COLUMNS, block)
        cells = []
        for r in block:
            # the paper's row name (its label), not the run's config key
            line = [latex_escape(r["type"]), latex_escape(r["paper_row"] or r["baseline"])]
            for c in TABLE3_COLUMNS:
                text = _fmt(r[c], MISSING["tex"])
                more = cell_text(r, c, pm="$\\pm$")[len(text):]
                line.append((latex_bold(text) if r[c] is not None and text == best.get(c) else text) + more)
            cells.append(line)
        sections.append((title, cells))
    text = latex_escape(caption) if caption else DEFAULT_LATEX_CAPTION
    missing = [r for r in rows if r["source"] == SOURCE_OURS and r["note"]]
    if missing:
        text += " Missing rows: " + "; ".join(
            f"{latex_escape(r['baseline'])}: {latex_escape(r['note'])}" for r in missing) + "."
    header = ["Type", "Method"] + [latex_escape(c) for c in TABLE3_COLUMNS]
    return latex_table(header, sections, "ll" + "r" * len(TABLE3_COLUMNS), text, label)


def table3_caption(split: str, data_source: str, resamples: int = 0, level: float = 0.95,
                   seeds: int = 1) -> str:
    """The caption of Table 3 for runs on ``split`` of the release (TikTalk) or the demo data;
    with ``resamples``, what its intervals are (and the spread over ``seeds``)."""
    on = (f"the TikTalk {split} set" if data_source == "release"
          else f"the {split} split of the embedded demo data (not TikTalk; not comparable)")
    text = (f"Automatic metrics on {on}: our runs, and the numbers reported in the paper's "
            f"Table 3 on the TikTalk test set. BLEU, Meteor, Rouge-L and CIDEr against each of "
            f"the 5 references, averaged; all values x100; the best of each column in bold.")
    if seeds > 1:
        text += (f" Ours: the mean over {seeds} training seeds ± their standard deviation, "
                 f"[the {round(100 * level)}% bootstrap interval of that mean over {resamples} "
                 f"resamples of the {split} dialogues].")
    elif resamples:
        text += (f" Ours: [the {round(100 * level)}% bootstrap interval over {resamples} "
                 f"resamples of the {split} dialogues].")
    return text


def build_table3(metrics_by_baseline: Mapping[str, Mapping], labels: Mapping[str, str],
                 out_csv: str | os.PathLike, out_md: str | os.PathLike,
                 out_tex: str | os.PathLike, all_paper_rows: bool = False,
                 caption: str | None = None, missing: Mapping[str, str] | None = None,
                 spread: Mapping[str, RowSpread] | None = None) -> pd.DataFrame:
    """Write Table 3 (ours, then the paper's numbers) as CSV, Markdown and LaTeX; ``missing``
    adds a row per run without metrics, saying why; ``spread`` the uncertainty of each row
    (module docstring).

    Returns the table as a DataFrame (metric values as floats, NaN in missing rows).
    """
    rows = table3_rows(metrics_by_baseline, labels, all_paper_rows=all_paper_rows, missing=missing,
                       spread=spread)
    write_text_atomic(out_csv, to_csv_text(rows))
    write_text_atomic(out_md, to_markdown(rows, caption))
    write_text_atomic(out_tex, to_latex(rows, caption=caption))
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))


def plot_table3(metrics_by_baseline: Mapping[str, Mapping], labels: Mapping[str, str],
                out_png: str | os.PathLike, metrics: Sequence[str] = TABLE3_METRIC_KEYS,
                title: str | None = None, dpi: int = 120,
                spread: Mapping[str, RowSpread] | None = None) -> None:
    """Grouped bar chart: one panel per metric, per baseline run a bar for ours and one for the
    paper's Table 3 row it is labelled with (no paper bar for an unlabelled run); with
    ``spread``, our bars carry their bootstrap intervals as error bars.

    Same validation as :func:`build_table3` (missing metric keys raise errors naming the
    baseline).
    """
    import numpy as np
    from matplotlib.figure import Figure

    from tiktalk.report.plots import OURS_COLOR, PAPER_COLOR, save_figure

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
