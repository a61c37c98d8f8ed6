"""Figure 2(b)/(c) from a context-sources scores JSON (:mod:`tiktalk.report.kit.context_sources`):
tables (CSV, Markdown) and the bar plot, with the paper's TikTalk bars beside ours in (b).

Figure 2(b) table columns: source, ours (% of non-skipped judgements), yes, n, paper (%),
kappa. Figure 2(c) table columns: level, n, then one % column per source. The paper gives its
2(c) TikTalk bars only as a drawing, so 2(c) shows ours alone.
"""

from __future__ import annotations

import os
from typing import Mapping

import numpy as np
from matplotlib.figure import Figure

from tiktalk.io import write_text_atomic
from tiktalk.report.paper import (
    FIGURE2_SOURCES,
    FIGURE2B_APPROXIMATE,
    FIGURE2B_RESPONSES,
    FIGURE2B_TIKTALK,
    FIGURE2B_VIDEOS,
    FIGURE2C_LEVELS,
)
from tiktalk.report.plots import OURS_COLOR, PAPER_COLOR, save_figure
from tiktalk.report.render import data_source_name, markdown_table, to_csv

FIGURE2B_COLUMNS = ("source", "ours", "yes", "n", "paper", "kappa")
FIGURE2C_COLUMNS = ("level", "n") + FIGURE2_SOURCES
LEVEL_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd")


def _fmt(v, digits: int = 1) -> str:
    return "" if v is None else f"{v:.{digits}f}"


def figure2b_rows(scores: Mapping) -> list[dict]:
    return [{"source": s, "ours": scores["shares"][s]["percent"], "yes": scores["shares"][s]["yes"],
             "n": scores["shares"][s]["n"], "paper": FIGURE2B_TIKTALK[s],
             "kappa": scores["kappa"][s]["kappa"]} for s in FIGURE2_SOURCES]


def figure2c_rows(scores: Mapping) -> list[dict]:
    return [{"level": lv, "n": scores["by_level"][lv]["n"], **scores["by_level"][lv]["percent"]}
            for lv in FIGURE2C_LEVELS]


def _csv(rows, columns, fmt) -> str:
    return to_csv(columns, [{c: fmt(c, r[c]) for c in columns} for r in rows])


def _cell(column: str, value) -> str:
    if value is None:
        return ""
    if column == "kappa":
        return f"{value:.2f}"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def caption(scores: Mapping, data_source: str) -> str:
    return (f"Responses that cannot be understood without each context source, % of "
            f"{scores['judgements'] - scores['skipped']} non-skipped judgements of "
            f"{scores['n_responses']} responses ({scores['n_items']} dialogues) from the "
            f"{scores['split']} split of {data_source_name(data_source)}, "
            f"{len(scores['annotators'])} annotator(s). Paper (TikTalk): {FIGURE2B_VIDEOS} videos, "
            f"{FIGURE2B_RESPONSES:,} responses.")


def to_markdown(scores: Mapping, data_source: str) -> str:
    b_rows = []
    for r in figure2b_rows(scores):
        paper = ("~" if r["source"] in FIGURE2B_APPROXIMATE else "") + _fmt(r["paper"], 0)
        b_rows.append([r["source"], _fmt(r["ours"]), r["yes"], r["n"], paper,
                       _cell("kappa", r["kappa"]) or "undefined"])
    out = [caption(scores, data_source), "", "### Figure 2(b): share per source\n",
           markdown_table(["Source", "Ours (%)", "Yes", "n", "Paper TikTalk (%)", "Fleiss' kappa"],
                          b_rows, "lrrrrr"),
           "", "### Figure 2(c): share per response level (ours)\n",
           markdown_table(["Level", "n", *FIGURE2_SOURCES],
                          ([r["level"], r["n"], *(_fmt(r[s]) for s in FIGURE2_SOURCES)]
                           for r in figure2c_rows(scores)), "lr" + "r" * len(FIGURE2_SOURCES))]
    reasons = sorted({k.get("undefined_reason", "") for k in scores["kappa"].values()} - {""})
    out += [f"\n_{r}_" for r in reasons]
    return "\n".join(out) + "\n"


def plot_figure2(scores: Mapping, out_png: str | os.PathLike, data_source: str, dpi: int = 120) -> None:
    """(b) ours vs the paper's TikTalk bars per source; (c) ours per source and level."""
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax_b, ax_c = fig.subplots(1, 2)
    x = np.arange(len(FIGURE2_SOURCES))
    width = 0.4
    ours = [np.nan if scores["shares"][s]["percent"] is None else scores["shares"][s]["percent"]
            for s in FIGURE2_SOURCES]
    ax_b.bar(x - width / 2, ours, width, label="ours", color=OURS_COLOR)
    ax_b.bar(x + width / 2, [FIGURE2B_TIKTALK[s] for s in FIGURE2_SOURCES], width,
             label="paper (TikTalk)", color=PAPER_COLOR, edgecolor="#555555", linewidth=0.5)
    ax_b.set_xticks(x, [s + (" (~)" if s in FIGURE2B_APPROXIMATE else "") for s in FIGURE2_SOURCES])
    ax_b.set_title("(b) cannot be understood without ...")
    ax_b.legend(fontsize=8)
    width_c = 0.8 / len(FIGURE2C_LEVELS)
    for k, lv in enumerate(FIGURE2C_LEVELS):
        values = [np.nan if scores["by_level"][lv]["percent"][s] is None
                  else scores["by_level"][lv]["percent"][s] for s in FIGURE2_SOURCES]
        ax_c.bar(x - 0.4 + width_c * (k + 0.5), values, width_c, color=LEVEL_COLORS[k],
                 label=f"{lv} (n={scores['by_level'][lv]['n']})")
    ax_c.set_xticks(x, FIGURE2_SOURCES)
    ax_c.set_title("(c) by response level (ours)")
    ax_c.legend(fontsize=8)
    for ax in (ax_b, ax_c):
        ax.set_ylim(0, 100)
        ax.set_ylabel("% of responses")
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    fig.suptitle(f"Figure 2: context sources, {scores['split']} split of "
                 f"{data_source_name(data_source)}", fontsize=10)
    save_figure(fig, out_png, dpi=dpi)


def build_figure2(scores: Mapping, out_b_csv, out_c_csv, out_md, out_png, *, data_source: str) -> None:
    write_text_atomic(out_b_csv, _csv(figure2b_rows(scores), FIGURE2B_COLUMNS, _cell))
    write_text_atomic(out_c_csv, _csv(figure2c_rows(scores), FIGURE2C_COLUMNS, _cell))
    write_text_atomic(out_md, to_markdown(scores, data_source))
    plot_figure2(scores, out_png, data_source)
