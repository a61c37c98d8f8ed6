"""Table 4 (human evaluation) from a scores JSON (:mod:`tiktalk.report.kit.human_eval`), beside the
paper's numbers: CSV, Markdown and LaTeX.

Rows (CSV columns :data:`TABLE4_COLUMNS`): ``statistic = "mean"`` rows of our systems (in the
paper's row order by their ``label``, unlabelled or non-Table-4 runs last), then the paper's
rows for those labels (or all eight with ``all_paper_rows``); then ``statistic =
"fleiss_kappa"``: ours per criterion plus pooled, and the paper's single value (0.52, which we
compare with our pooled kappa: the paper does not say per criterion). A kappa that is
undefined is an empty cell, and the Markdown says why. In LaTeX the best mean of each column is
bold, separately in our block and in the paper's.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

from tiktalk.io import write_text_atomic
from tiktalk.report.paper import TABLE4, TABLE4_ANNOTATORS, TABLE4_DIALOGUES, TABLE4_KAPPA, TABLE4_ROWS
from tiktalk.report.render import (Column, best_cells, data_source_name, latex_bold, latex_escape,
                                   latex_table, markdown_table, to_csv)

SOURCE_OURS = "ours"
SOURCE_PAPER = "paper"
MEAN = "mean"
KAPPA = "fleiss_kappa"
PAPER_CITATION = "TikTalk, arXiv 2301.05880, Table 4"
FIXED_COLUMNS = ("source", "statistic", "baseline", "paper_row")


def table4_rows(scores: Mapping, labels: Mapping[str, str], all_paper_rows: bool = False) -> list[dict]:
    """Row dicts with keys ``FIXED_COLUMNS + criteria + ("pooled", "n")``; values are floats
    (None for an empty cell)."""
    criteria = list(scores["scale"]["criteria"])
    systems = list(scores["systems"])
    position = {row: i for i, row in enumerate(TABLE4_ROWS)}
    order = sorted(systems, key=lambda s: (position.get(labels.get(s), len(position)), systems.index(s)))
    rows = []
    for s in order:
        rows.append({"source": SOURCE_OURS, "statistic": MEAN, "baseline": s,
                     "paper_row": labels.get(s, ""), **{c: float(scores["means"][s][c]) for c in criteria},
                     "pooled": None, "n": int(scores["n_ratings"][s])})
    wanted = set(TABLE4_ROWS) if all_paper_rows else {labels.get(s) for s in systems} & set(TABLE4)
    for row in TABLE4_ROWS:
        if row in wanted:
            rows.append({"source": SOURCE_PAPER, "statistic": MEAN, "baseline": "", "paper_row": row,
                         **{c: TABLE4[row].get(c) for c in criteria}, "pooled": None, "n": None})
    kappa = scores["kappa"]
    rows.append({"source": SOURCE_OURS, "statistic": KAPPA, "baseline": "", "paper_row": "",
                 **{c: kappa["per_criterion"][c]["kappa"] for c in criteria},
                 "pooled": kappa["pooled"]["kappa"], "n": kappa["pooled"]["n_subjects"]})
    rows.append({"source": SOURCE_PAPER, "statistic": KAPPA, "baseline": "", "paper_row": "",
                 **{c: None for c in criteria}, "pooled": TABLE4_KAPPA, "n": None})
    return rows


def _fmt(v) -> str:
    return "" if v is None else f"{v:.2f}"


def to_csv_text(rows: Sequence[Mapping], criteria: Sequence[str]) -> str:
    return to_csv(list(FIXED_COLUMNS) + list(criteria) + ["pooled", "n"],
                  [{**r, **{c: _fmt(r[c]) for c in list(criteria) + ["pooled"]}} for r in rows])


def _kappa_text(scores: Mapping) -> str:
    kappa = scores["kappa"]
    pooled = kappa["pooled"]
    parts = []
    for c, k in kappa["per_criterion"].items():
        parts.append(f"{c} {_fmt(k['kappa'])}" if k["kappa"] is not None else f"{c} undefined")
    head = (f"Fleiss' kappa over {len(scores['annotators'])} annotators: " + ", ".join(parts)
            + (f"; pooled {_fmt(pooled['kappa'])} ({pooled['n_subjects']} subjects)"
               if pooled["kappa"] is not None else "; pooled undefined")
            + f". Paper: {TABLE4_KAPPA:.2f} ({TABLE4_ANNOTATORS} annotators).")
    reasons = sorted({k.get("undefined_reason", "") for k in [*kappa["per_criterion"].values(), pooled]} - {""})
    return head + "".join(f"\n\n_{r}_" for r in reasons)


def caption(scores: Mapping, data_source: str) -> str:
    s = scores["scale"]
    return (f"Human evaluation of {len(scores['systems'])} systems on {scores['n_items']} dialogues "
            f"sampled from the {scores['split']} split of {data_source_name(data_source)}, rated by "
            f"{len(scores['annotators'])} annotators from {s['low']} (worst) to {s['high']} (best); "
            f"mean ratings. Paper: TikTalk test set, {TABLE4_DIALOGUES} dialogues, "
            f"{TABLE4_ANNOTATORS} annotators.")


def to_markdown(rows: Sequence[Mapping], scores: Mapping, data_source: str) -> str:
    criteria = list(scores["scale"]["criteria"])
    ours = [r for r in rows if r["source"] == SOURCE_OURS and r["statistic"] == MEAN]
    out = [f"{caption(scores, data_source)}\n", "### Ours\n",
           markdown_table(["Baseline", "Paper row", *criteria, "n"],
                          ([r["baseline"], r["paper_row"], *(_fmt(r[c]) for c in criteria), r["n"]]
                           for r in ours), "ll" + "r" * (len(criteria) + 1)),
           "", _kappa_text(scores)]
    paper = [r for r in rows if r["source"] == SOURCE_PAPER and r["statistic"] == MEAN]
    if paper:
        out += ["", f"### Paper (reported: {PAPER_CITATION})\n",
                markdown_table(["Method", *criteria], ([r["paper_row"], *(_fmt(r[c]) for c in criteria)]
                                                       for r in paper), "l" + "r" * len(criteria))]
    return "\n".join(out) + "\n"


def to_latex(rows: Sequence[Mapping], scores: Mapping, data_source: str,
             label: str = "tab:table4") -> str:
    criteria = list(scores["scale"]["criteria"])
    columns = [Column(c, c, better="high") for c in criteria]
    sections = []
    for source, title in ((SOURCE_OURS, "Ours"), (SOURCE_PAPER, f"Paper (reported: {PAPER_CITATION})")):
        block = [r for r in rows if r["source"] == source and r["statistic"] == MEAN]
        if source == SOURCE_PAPER and not block:
            continue
        best = best_cells(columns, block)
        cells = []
        for r in block:
            method = r["paper_row"] or r["baseline"]
            if source == SOURCE_OURS and r["paper_row"] and r["paper_row"] not in TABLE4:
                method = f"{r['paper_row']} ({r['baseline']})"
            values = [_fmt(r[c]) for c in criteria]
            cells.append([latex_escape(method)] + [latex_bold(v) if v and v == best.get(c) else v
                                                    for c, v in zip(criteria, values)])
        if source == SOURCE_OURS:
            kappa = next(r for r in rows if r["source"] == source and r["statistic"] == KAPPA)
            cells.append([r"Fleiss' $\kappa$"] + [_fmt(kappa[c]) if kappa[c] is not None else "--"
                                                   for c in criteria])
        sections.append((title, cells))
    pooled = scores["kappa"]["pooled"]["kappa"]
    kappa_note = (f" Fleiss' $\\kappa$ pooled over the criteria: {_fmt(pooled)}" if pooled is not None
                  else " Fleiss' $\\kappa$ pooled over the criteria: undefined")
    text = latex_escape(caption(scores, data_source)) + kappa_note + f" (paper: {TABLE4_KAPPA:.2f})."
    header = ["Method"] + [latex_escape(c) for c in criteria]
    return latex_table(header, sections, "l" + "r" * len(criteria), text, label)


def build_table4(scores: Mapping, labels: Mapping[str, str], out_csv: str | os.PathLike,
                 out_md: str | os.PathLike, out_tex: str | os.PathLike, *, data_source: str,
                 all_paper_rows: bool = True) -> list[dict]:
    """Write Table 4 as CSV, Markdown and LaTeX; return its rows."""
    rows = table4_rows(scores, labels, all_paper_rows=all_paper_rows)
    criteria = list(scores["scale"]["criteria"])
    write_text_atomic(out_csv, to_csv_text(rows, criteria))
    write_text_atomic(out_md, to_markdown(rows, scores, data_source))
    write_text_atomic(out_tex, to_latex(rows, scores, data_source))
    return rows


def plot_table4(scores: Mapping, labels: Mapping[str, str], out_png: str | os.PathLike,
                data_source: str, dpi: int = 120) -> None:
    """One panel per criterion: per system a bar for ours and one for the paper's Table 4 row
    it is labelled with (none for a run without a Table 4 row); y axis = the rating scale."""
    import numpy as np
    from matplotlib.figure import Figure

    from tiktalk.report.plots import OURS_COLOR, PAPER_COLOR, save_figure

    rows = [r for r in table4_rows(scores, labels) if r["statistic"] == MEAN]
    ours = [r for r in rows if r["source"] == SOURCE_OURS]
    paper = {r["paper_row"]: r for r in rows if r["source"] == SOURCE_PAPER}
    criteria = list(scores["scale"]["criteria"])
    names = [r["paper_row"] or r["baseline"] for r in ours]
    x = np.arange(len(ours))
    fig = Figure(figsize=(3.3 * len(criteria) + 0.5, 3.4), layout="constrained")
    axes = fig.subplots(1, len(criteria), squeeze=False).ravel()
    for ax, c in zip(axes, criteria):
        paper_v = [paper[r["paper_row"]][c] if r["paper_row"] in paper and paper[r["paper_row"]][c]
                   is not None else np.nan for r in ours]
        ax.bar(x - 0.2, [r[c] for r in ours], 0.4, label="ours", color=OURS_COLOR)
        ax.bar(x + 0.2, paper_v, 0.4, label="paper", color=PAPER_COLOR, edgecolor="#555555",
               linewidth=0.5)
        ax.set_title(c)
        ax.set_ylim(scores["scale"]["low"], scores["scale"]["high"])
        ax.set_xticks(x, names, rotation=45, ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    handles, legend_labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, legend_labels, loc="outside upper right", ncols=2, fontsize=9)
    fig.suptitle(f"Table 4: mean ratings, {scores['split']} split of {data_source_name(data_source)}",
                 fontsize=10)
    save_figure(fig, out_png, dpi=dpi)
