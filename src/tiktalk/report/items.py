"""Demo wiring table: how each baseline scores on each kind of demo item.

The demo's items can each be answered from one source only (visual, audio, knowledge, or the
text itself; :mod:`tiktalk.demo`). Scores per item type show whether each model uses the
modality it is given. BLEU-1/2 and ROUGE-L come from the same pycocoevalcap scorers as the
metrics stage with the per-reference protocol; METEOR and CIDEr are left out here (METEOR's
JVM per subset is slow, and CIDEr's IDF on a subset of a few dozen items is not meaningful).
``hit`` is the share of predictions equal to one of their references; ``key_hit`` the share
that name the item's key and nothing else of its kind (the colour and shape, the pitch, the
emotion; :mod:`tiktalk.demo.keys`), empty for text items, which have no key. The margins
between rows, with their bootstrap intervals, are :mod:`tiktalk.report.wiring`'s table.
"""

from __future__ import annotations

import os
from typing import Iterator, Mapping, NamedTuple, Sequence

import pandas as pd
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.rouge.rouge import Rouge

from tiktalk.data.predictions import read_predictions
from tiktalk.demo.keys import KEY_GROUPS, key_hits
from tiktalk.io import atomic_path, read_json, read_jsonl
from tiktalk.metrics.evaluate import align
from tiktalk.metrics.tokenize import char_tokenize

ITEM_COLUMNS = ("baseline", "item_type", "n", "bleu_1", "bleu_2", "rouge_l", "hit", "key_hit")


class Subset(NamedTuple):
    """One baseline's predictions on the items of one type, aligned with their references."""

    baseline: str
    path: str | os.PathLike          # the baseline's predictions file
    item_type: str
    ids: list[str]
    hyps: list[str]
    refs: list[list[str]]


def read_item_types(item_types_path: str | os.PathLike,
                    references: Sequence[Mapping]) -> dict[str, str]:
    """``{dialogue_id: item type}`` of ``item_types_path``; every reference's dialogue needs one."""
    types: dict = read_json(item_types_path)
    missing = [r["dialogue_id"] for r in references if r["dialogue_id"] not in types]
    if missing:
        raise ValueError(f"{item_types_path}: no item type for {len(missing)} dialogue(s), "
                         f"e.g. {missing[:5]}")
    return types


def item_type_subsets(predictions_by_baseline: Mapping[str, str | os.PathLike],
                      references_path: str | os.PathLike,
                      item_types_path: str | os.PathLike) -> Iterator[Subset]:
    """Per baseline (in the mapping's order) and item type (sorted): its predictions on the
    items of that type, aligned with the references (:func:`tiktalk.metrics.evaluate.align`)."""
    references = read_jsonl(references_path)
    types = read_item_types(item_types_path, references)
    for baseline, path in predictions_by_baseline.items():
        ids, hyps, refs = align(read_predictions(path), references)
        for item_type in sorted({types[i] for i in ids}):
            idx = [j for j, i in enumerate(ids) if types[i] == item_type]
            yield Subset(baseline, path, item_type, [ids[j] for j in idx], [hyps[j] for j in idx],
                         [refs[j] for j in idx])


def subset_scores(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> dict[str, float]:
    """Per-reference BLEU-1/2 and ROUGE-L (x100) averaged over slots, and the exact-hit rate."""
    k = min(len(r) for r in refs)
    bleu1 = bleu2 = rouge = 0.0
    res = {i: [char_tokenize(h)] for i, h in enumerate(hyps)}
    for slot in range(k):
        gts = {i: [char_tokenize(r[slot])] for i, r in enumerate(refs)}
        b, _ = Bleu(2).compute_score(gts, res, verbose=0)
        r_score, _ = Rouge().compute_score(gts, res)
        bleu1 += b[0] / k
        bleu2 += b[1] / k
        rouge += r_score / k
    hits = sum(char_tokenize(h) in {char_tokenize(x) for x in r} for h, r in zip(hyps, refs))
    return {"bleu_1": 100 * bleu1, "bleu_2": 100 * bleu2, "rouge_l": 100 * rouge,
            "hit": 100 * hits / len(hyps)}


def key_hit_rate(item_type: str, ids: Sequence[str], hyps: Sequence[str],
                 refs: Sequence[Sequence[str]]) -> float:
    """Share (x100) of ``hyps`` that name their item's key; NaN for a type without keys."""
    if not KEY_GROUPS[item_type]:
        return float("nan")
    hits = key_hits(item_type, ids, hyps, refs)
    return 100 * sum(hits) / len(hits)


def item_type_table(predictions_by_baseline: Mapping[str, str | os.PathLike],
                    references_path: str | os.PathLike,
                    item_types_path: str | os.PathLike) -> pd.DataFrame:
    rows = []
    for s in item_type_subsets(predictions_by_baseline, references_path, item_types_path):
        scores = subset_scores(s.hyps, s.refs)
        scores["key_hit"] = key_hit_rate(s.item_type, s.ids, s.hyps, s.refs)
        rows.append({"baseline": s.baseline, "item_type": s.item_type, "n": len(s.ids), **scores})
    return pd.DataFrame(rows, columns=list(ITEM_COLUMNS))


def write_item_type_table(predictions_by_baseline, references_path, item_types_path,
                          out_csv) -> pd.DataFrame:
    table = item_type_table(predictions_by_baseline, references_path, item_types_path)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False, float_format="%.2f")
    return table
