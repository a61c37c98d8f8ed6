"""The ranking table: Recall@1/5/10 and Mean Rank of every baseline (Livebot's protocol).

Reads the ranking files (:mod:`tiktalk.baselines.ranking`): one per baseline that can score a
response. A baseline whose family cannot score gets a row that says so instead of numbers.
A last row gives chance (every candidate scored alike). Mean Rank (of every reference, Livebot's
MR) is the headline; the rank of the best-ranked reference is beside it. The paper prints no
ranking numbers (its text reports only that DialoGPT ranks better than Maria), so there is no
paper block.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

from tiktalk.io import read_json, write_text_atomic
from tiktalk.report.render import Block, Column, split_phrase, to_csv, to_latex, to_markdown

METRICS = ("recall_at_1", "recall_at_5", "recall_at_10", "mean_rank", "mean_best_rank")
COLUMNS = (
    Column("recall_at_1", "R@1", better="high"), Column("recall_at_5", "R@5", better="high"),
    Column("recall_at_10", "R@10", better="high"), Column("mean_rank", "MR", better="low"),
    Column("mean_best_rank", "Best rank", better="low"),
)
CSV_FIELDS = ("baseline", "label") + METRICS + ("n", "n_candidates", "score", "note")
SCORE_TEXT = {"mean": "mean log-likelihood per token (length-normalised)",
              "sum": "summed log-likelihood"}


def ranking_rows(paths: Mapping[str, str | os.PathLike | None], labels: Mapping[str, str],
                 unscored: Mapping[str, str] | None = None) -> tuple[list[dict], dict | None]:
    """(rows in ``paths`` order, chance metrics); ``paths[b]`` None or ``unscored[b]``: no numbers."""
    unscored = dict(unscored or {})
    rows, chance = [], None
    for name, path in paths.items():
        row = {"baseline": name, "label": labels.get(name, name), "note": ""}
        if path is None or name in unscored:
            row.update(dict.fromkeys(METRICS), note=unscored.get(name, "cannot score a response"))
        else:
            obj = read_json(path)
            m = obj["metrics"]
            missing = [k for k in METRICS if k not in m]
            if missing:
                raise KeyError(f"{path}: ranking metrics lack {missing}")
            row.update({k: float(m[k]) for k in METRICS}, n=m.get("n"),
                       n_candidates=m.get("n_candidates"), score=m.get("score"))
            chance = chance or obj.get("chance")
        rows.append(row)
    return rows, chance


def caption(rows: Sequence[Mapping], split: str, data_source: str) -> str:
    scored = [r for r in rows if r.get("n")]
    n = scored[0]["n"] if scored else 0
    k = scored[0]["n_candidates"] if scored else 0
    score = SCORE_TEXT.get(scored[0]["score"], "") if scored else ""
    return (f"Ranking on {split_phrase(split, data_source)}: each of {n} dialogues ranks {k} "
            f"candidates (its 5 references and {k - 5 if k else 0} responses of other dialogues) "
            f"by the model's {score}. R@K: share of the references among the top K (x100; at "
            f"most 20 for K = 1); MR: mean rank of the references (headline); Best rank: rank of "
            f"the best-ranked reference.")


def build_ranking_table(paths: Mapping[str, str | os.PathLike | None], labels: Mapping[str, str],
                        out_csv, out_md, out_tex, out_png, *, split: str, data_source: str,
                        unscored: Mapping[str, str] | None = None) -> list[dict]:
    rows, chance = ranking_rows(paths, labels, unscored)
    write_text_atomic(out_csv, to_csv(CSV_FIELDS, rows, {k: "{:.4f}" for k in METRICS}))
    display = [{**{k: r[k] if r["note"] == "" else r["note"] for k in METRICS}, "label": r["label"]}
               for r in rows]
    blocks = [Block("Ours", display)]
    if chance:
        blocks.append(Block("Chance", [{**{k: chance[k] for k in METRICS}, "label": "chance"}]))
    cap = caption(rows, split, data_source)
    write_text_atomic(out_md, to_markdown(COLUMNS, blocks, cap, "Method"))
    write_text_atomic(out_tex, to_latex(COLUMNS, blocks, cap, "tab:ranking", "Method"))
    plot_ranking(rows, chance, out_png)
    return rows


def plot_ranking(rows: Sequence[Mapping], chance: Mapping | None, out_png) -> None:
    import numpy as np
    from matplotlib.figure import Figure

    from tiktalk.report.plots import OURS_COLOR, save_figure

    scored = [r for r in rows if r["note"] == ""]
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    axes = fig.subplots(1, 2, width_ratios=(3, 2))
    x = np.arange(len(scored))
    width = 0.27
    for i, (key, shade) in enumerate((("recall_at_1", 0.45), ("recall_at_5", 0.7), ("recall_at_10", 1.0))):
        axes[0].bar(x + (i - 1) * width, [r[key] for r in scored], width, label=key.replace("recall_at_", "R@"),
                    color=OURS_COLOR, alpha=shade)
        if chance:
            axes[0].axhline(chance[key], color="#888888", linewidth=0.6, linestyle=":")
    axes[0].set_ylabel("x100")
    axes[0].legend(fontsize=8, ncols=3)
    axes[1].bar(x, [r["mean_rank"] for r in scored], 0.6, color=OURS_COLOR)
    if chance:
        axes[1].axhline(chance["mean_rank"], color="#888888", linewidth=0.8, linestyle=":", label="chance")
        axes[1].legend(fontsize=8)
    axes[1].set_ylabel("mean rank of the references (lower is better)")
    for ax in axes:
        ax.set_xticks(x, [r["label"] for r in scored], rotation=45, ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    fig.suptitle("Ranking (Livebot protocol): Recall@K and Mean Rank", fontsize=11)
    save_figure(fig, out_png)
