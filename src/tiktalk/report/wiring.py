"""Demo wiring margins with paired bootstrap intervals (``results/tables/demo_wiring.csv``).

Each demo item can be answered from one source only (:mod:`tiktalk.demo`), so a row that is
given that source must beat its counterpart without it, on the items of that type. A
relation is (item type, row, counterpart); its **margin** is the row's mean per-item score
minus the counterpart's, on the same items, with a paired bootstrap 95% interval: items are
resampled with replacement (the same items for both rows), ``n_resamples`` times from a
fixed seed, and the interval is the 2.5th and 97.5th percentile of the resampled margins.

Per-item scores (x100, so means are percentages / points):

* visual, audio, knowledge items: ``key_hit``, 100 when the response names the item's key
  and nothing else of its kind (the colour and shape, the pitch, the emotion;
  :mod:`tiktalk.demo.keys`), else 0. BLEU-2 on these items is dominated by the template the
  answer shares with every other answer of its type ("是一个...色的..."), so it moves little
  with the one fact the modality carries; the key hit moves with that fact only.
* text items: ``rouge_l``, the item's ROUGE-L F against its best reference (pycocoevalcap's
  sentence score, beta 1.2, character tokens). A text item's answer is fixed by the prompt
  as a whole, and any reference is a right answer.

A relation **holds** when ``ci_low > threshold``. For the modality relations the threshold is
0: the gain is there, at 95%. For text items every row is compared with the best row on them
(the highest mean), with threshold ``-text_tolerance``: the row is, at 95%, within
``text_tolerance`` points of the best (:data:`TEXT_TOLERANCE`, 10 ROUGE-L points: two rows
that both answer the prompt differ by the paraphrase they pick, a few points; a row that does
not read the prompt loses tens of points).

The relations come from the baseline families' descriptors over the config's Table 3 rows
(:func:`tiktalk.workflow.wiring_relations`, passed in by the rule); a relation whose rows are
not in the run is left out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from pycocoevalcap.rouge.rouge import Rouge

from tiktalk.demo.keys import KEY_GROUPS, key_hits
from tiktalk.io import atomic_path
from tiktalk.metrics.tokenize import char_tokenize
from tiktalk.report.items import item_type_subsets
from tiktalk.report.render import markdown_table

N_RESAMPLES = 2000
SEED = 0
LEVEL = 0.95
TEXT_TOLERANCE = 10.0

WIRING_COLUMNS = ("relation", "item_type", "row", "counterpart", "metric", "n", "row_score",
                  "counterpart_score", "margin", "ci_low", "ci_high", "threshold", "holds")


@dataclass(frozen=True)
class Relation:
    """``row`` beats ``counterpart`` on the items of ``item_type``; ``relation`` names what
    the row has that the counterpart lacks."""

    relation: str
    item_type: str
    row: str
    counterpart: str


TEXT_RELATION = "text"        # every row against the best row on text items
MODALITY_TYPES = ("visual", "audio", "knowledge")


def paired_bootstrap(a: Sequence[float], b: Sequence[float], n_resamples: int = N_RESAMPLES,
                     seed: int = SEED, level: float = LEVEL) -> tuple[float, float, float]:
    """(mean(a - b), low, high): the paired bootstrap ``level`` interval of the mean
    difference of two score vectors over the same items (percentile method)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or not len(a):
        raise ValueError(f"paired bootstrap needs two equal-length non-empty vectors, got "
                         f"{a.shape} and {b.shape}")
    if n_resamples < 1 or not 0 < level < 1:
        raise ValueError(f"n_resamples must be >= 1 and level in (0, 1), got {n_resamples}, {level}")
    d = a - b
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(n_resamples, len(d)))].mean(axis=1)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(d.mean()), float(low), float(high)


def _rouge_l(hyp: str, refs: Sequence[str], scorer=Rouge()) -> float:
    return 100 * scorer.calc_score([char_tokenize(hyp)], [char_tokenize(r) for r in refs])


def item_scores(item_type: str, hyps: Sequence[str], refs: Sequence[Sequence[str]],
                ids: Sequence[str]) -> tuple[str, np.ndarray]:
    """(metric name, per-item scores x100) of ``hyps`` on items of ``item_type``."""
    if item_type == "text":
        return "rouge_l", np.array([_rouge_l(h, r) for h, r in zip(hyps, refs)])
    return "key_hit", 100.0 * np.array(key_hits(item_type, ids, hyps, refs), dtype=np.float64)


class ItemScores:
    """Per-item scores of every baseline, by item type, on the items they all answered."""

    def __init__(self, predictions_by_baseline: Mapping[str, str | os.PathLike],
                 references_path: str | os.PathLike, item_types_path: str | os.PathLike):
        self.metric: dict[str, str] = {}
        self.scores: dict[tuple[str, str], np.ndarray] = {}   # (baseline, item type) -> scores
        self.ids: dict[str, list[str]] = {}
        for sub in item_type_subsets(predictions_by_baseline, references_path, item_types_path):
            if self.ids.setdefault(sub.item_type, sub.ids) != sub.ids:
                raise ValueError(f"{sub.path}: the {sub.item_type} items differ from the other "
                                 "baselines'")
            metric, s = item_scores(sub.item_type, sub.hyps, sub.refs, sub.ids)
            self.metric[sub.item_type] = metric
            self.scores[(sub.baseline, sub.item_type)] = s
        self.baselines = list(predictions_by_baseline)

    def has(self, baseline: str, item_type: str) -> bool:
        return (baseline, item_type) in self.scores

    def mean(self, baseline: str, item_type: str) -> float:
        return float(self.scores[(baseline, item_type)].mean())


def _row(scores: ItemScores, relation: str, item_type: str, row: str, counterpart: str,
         threshold: float, n_resamples: int, seed: int) -> dict:
    a, b = scores.scores[(row, item_type)], scores.scores[(counterpart, item_type)]
    margin, low, high = paired_bootstrap(a, b, n_resamples, seed)
    return {"relation": relation, "item_type": item_type, "row": row, "counterpart": counterpart,
            "metric": scores.metric[item_type], "n": len(a), "row_score": float(a.mean()),
            "counterpart_score": float(b.mean()), "margin": margin, "ci_low": low, "ci_high": high,
            "threshold": threshold, "holds": bool(low > threshold)}


def wiring_table(scores: ItemScores, relations: Sequence[Relation],
                 text_tolerance: float = TEXT_TOLERANCE, n_resamples: int = N_RESAMPLES,
                 seed: int = SEED) -> pd.DataFrame:
    """One row per relation whose two rows and item type are in ``scores``, then one per
    baseline on text items against the best baseline there (see the module doc)."""
    rows = []
    for rel in relations:
        if scores.has(rel.row, rel.item_type) and scores.has(rel.counterpart, rel.item_type):
            rows.append(_row(scores, rel.relation, rel.item_type, rel.row, rel.counterpart, 0.0,
                             n_resamples, seed))
    text = [b for b in scores.baselines if scores.has(b, "text")]
    if text:
        best = max(text, key=lambda b: scores.mean(b, "text"))   # first of equals: config order
        for b in text:
            if b != best:
                rows.append(_row(scores, TEXT_RELATION, "text", b, best, -float(text_tolerance),
                                 n_resamples, seed))
    return pd.DataFrame(rows, columns=list(WIRING_COLUMNS))


def write_wiring_table(table: pd.DataFrame, out_csv: str | os.PathLike) -> None:
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.2f")


def markdown(table: pd.DataFrame, labels: Mapping[str, str] | None = None) -> str:
    """The wiring table as a Markdown table (rows named by ``labels``, e.g. Table 3's)."""
    labels = labels or {}
    cells = ([r.relation, r.item_type, labels.get(r.row, r.row),
              labels.get(r.counterpart, r.counterpart), r.metric, r.n, f"{r.row_score:.1f}",
              f"{r.counterpart_score:.1f}", f"{r.margin:+.1f} [{r.ci_low:+.1f}, {r.ci_high:+.1f}]",
              "yes" if r.holds else "NO"] for r in table.itertuples(index=False))
    return markdown_table(["relation", "items", "row", "counterpart", "metric", "n", "row",
                           "counterpart", "margin [95% CI]", "holds"], cells, "l" * 10) + "\n"


COUNTERFACTUAL_COLUMNS = ("relation", "item_type", "row", "n", "real_score", "permuted_score",
                          "loss", "loss_ci_low", "loss_ci_high", "chance", "above_chance",
                          "above_chance_ci_low", "vanishes")
VIDEO_RELATIONS = ("frames", "audio")


def chance_level(item_type: str) -> float:
    """The key hit (x100) of a row that names one word of each of ``item_type``'s key groups
    at random: what a row scores whose answers follow another video's features."""
    groups = KEY_GROUPS[item_type]
    if not groups:
        raise ValueError(f"{item_type} items have no key, so no chance level")
    return 100.0 * float(np.prod([1.0 / len(g) for g in groups]))


def counterfactual_table(real: ItemScores, permuted: ItemScores,
                         relations: Sequence[Relation],
                         n_resamples: int = N_RESAMPLES, seed: int = SEED) -> pd.DataFrame:
    """For each frames/audio relation of ``relations`` whose row is in both score sets: how the
    row does on its items with the right video's features (``real``) and with another video's
    (``permuted``, :mod:`tiktalk.media.counterfactual`).

    The gain comes from the right video when the row **loses** it with the wrong video
    (``loss`` = real - permuted, paired bootstrap interval above 0) and then names the key no
    better than chance (:func:`chance_level`; ``above_chance`` = permuted - chance, interval
    reaching 0 or below): ``vanishes``. The counterpart is not the yardstick here: a row
    without the modality may score below chance (it need not name any key of the kind), so a
    permuted row can keep a margin over it while its answers follow the wrong video."""
    rows = []
    seen = set()
    for rel in relations:
        key = (rel.item_type, rel.row)
        if rel.relation not in VIDEO_RELATIONS or key in seen:
            continue
        if not (real.has(rel.row, rel.item_type) and permuted.has(rel.row, rel.item_type)):
            continue
        seen.add(key)
        if real.ids[rel.item_type] != permuted.ids[rel.item_type]:
            raise ValueError(f"{rel.item_type} items differ between the real and the permuted run")
        a, b = real.scores[(rel.row, rel.item_type)], permuted.scores[(rel.row, rel.item_type)]
        loss, low, high = paired_bootstrap(a, b, n_resamples, seed)
        chance = chance_level(rel.item_type)
        above, above_low, _ = paired_bootstrap(b, np.full_like(b, chance), n_resamples, seed)
        rows.append({"relation": rel.relation, "item_type": rel.item_type, "row": rel.row,
                     "n": len(a), "real_score": float(a.mean()), "permuted_score": float(b.mean()),
                     "loss": loss, "loss_ci_low": low, "loss_ci_high": high, "chance": chance,
                     "above_chance": above, "above_chance_ci_low": above_low,
                     "vanishes": bool(low > 0 and above_low <= 0)})
    return pd.DataFrame(rows, columns=list(COUNTERFACTUAL_COLUMNS))
