"""Human evaluation (paper sec. 4.1.2, Table 4): blinded rating sheets, scores, Fleiss' kappa.

1. :func:`make_sheets` samples ``n`` dialogues of a split (``Random(seed).sample`` of the sorted
   dialogue ids) and writes one blinded sheet per annotator (:mod:`tiktalk.report.kit.annotation`:
   candidates in an order of each annotator's own), its HTML rating page, and the key.
2. :func:`score` reads the filled sheets back and writes, per system, the mean rating of each
   criterion over every (dialogue, annotator) on the scale of the key (the paper: 1 worst ..
   5 best; "the final score is the mean of their ratings"), and Fleiss' kappa per criterion and
   pooled. Kappa's subjects are (dialogue, system) pairs, its raters the annotators and its
   categories the scale's points; "pooled" stacks the subjects of every criterion.
3. :mod:`tiktalk.report.kit.table4` renders Table 4 beside the paper's numbers.

Scores JSON (``version`` :data:`SCORES_VERSION`)::

    {"version", "task": "human-eval", "split", "seed", "scale": {"low", "high", "criteria"},
     "n_items", "annotators": [...], "systems": [...],
     "means": {system: {criterion: mean}}, "sd": {system: {criterion: sd}},
     "n_ratings": {system: ratings per criterion},
     "annotator_means": {annotator: {system: {criterion: mean}}},
     "kappa": {"per_criterion": {criterion: K}, "pooled": K}}

with K = ``{"kappa": float | null, "n_subjects", "n_raters", "observed_agreement",
"expected_agreement", "undefined_reason"?}`` (null with the reason when kappa is undefined).
"""

from __future__ import annotations

import html
import math
import os
import random
from pathlib import Path
from typing import Mapping, Sequence

from tiktalk.data.dialogues import read_dialogues
from tiktalk.data.predictions import read_predictions
from tiktalk.io import write_json
from tiktalk.report.kit.agreement import kappa_of
from tiktalk.report.kit import annotation, rating_page
from tiktalk.report.kit.settings import Scale

TASK = "human-eval"
SCORES_VERSION = 1

# The paper's definitions (sec. 4.1.2), shown on the rating page for its criteria.
CRITERION_GUIDE = {
    "Sensible": "Sensibleness: whether the response is meaningful and coherent, and conforms "
                "to logic and common sense.",
    "Specific": "Specificity: whether the response is relevant to the specific context, "
                "provides sufficient details, and avoids being too vague or general.",
    "MM Relevant": "Multi-modal relevance: the degree of correlation between the response and "
                   "the multi-modal information in the video.",
    "Quality": "Overall quality: overall assessment of the quality of the response based on "
               "the video and the dialogue context.",
}


def responses_by_system(predictions: Mapping[str, str | os.PathLike],
                        dialogue_ids: Sequence[str]) -> dict[str, dict[str, str]]:
    """``{system: {dialogue_id: response}}``; every file must cover ``dialogue_ids``."""
    out = {}
    for system, path in predictions.items():
        rows = read_predictions(path)
        responses: dict[str, str] = {}
        for lineno, row in enumerate(rows, 1):
            did, resp = row.get("dialogue_id"), row.get("response")
            if not isinstance(did, str) or not isinstance(resp, str):
                raise ValueError(f"{path}:{lineno}: expected {{'dialogue_id': str, 'response': str}}")
            if did in responses:
                raise ValueError(f"{path}:{lineno}: dialogue {did!r} predicted twice")
            responses[did] = resp
        missing = [d for d in dialogue_ids if d not in responses]
        if missing:
            raise ValueError(f"{path}: no prediction of system {system!r} for {len(missing)} "
                             f"sampled dialogue(s), e.g. {missing[:5]}")
        out[system] = responses
    return out


def draw_dialogues(dialogues: Sequence[Mapping], n: int, seed: int, where: str = "") -> list[Mapping]:
    """``n`` dialogues drawn by ``Random(seed).sample`` from the id-sorted dialogues."""
    by_id = {d["dialogue_id"]: d for d in dialogues}
    ids = sorted(by_id)
    if n > len(ids):
        raise ValueError(f"{where}asked for {n} dialogues, but there are only {len(ids)}")
    return [by_id[i] for i in random.Random(seed).sample(ids, n)]


def build_items(drawn: Sequence[Mapping], predictions: Mapping[str, Mapping[str, str]],
                systems: Sequence[str]) -> list[annotation.Item]:
    """One item per drawn dialogue, with every system's response as a candidate."""
    return [annotation.Item(name, d["dialogue_id"], d["video_id"], tuple(d["context"]),
                            tuple((s, predictions[s][d["dialogue_id"]]) for s in systems))
            for name, d in zip(annotation.item_names(len(drawn)), drawn)]


def _guide(scale: Scale) -> str:
    parts = [f"<p>Rate every candidate response on each criterion from {scale.low} (worst) to "
             f"{scale.high} (best), after watching the video and reading the context. The "
             "candidates of an item come from different systems, in random order; rate each one "
             "on its own. Press <b>Download CSV</b> when done and return the file.</p><ul>"]
    for c in scale.criteria:
        parts.append(f"<li><b>{html.escape(c)}</b>: {html.escape(CRITERION_GUIDE.get(c, c))}</li>")
    return "".join(parts) + "</ul>"


def scale_of_key(key: Mapping) -> Scale:
    d = key["settings"]["scale"]
    return Scale(d["low"], d["high"], tuple(d["criteria"]))


def write_pages(key: Mapping, pages_dir: str | os.PathLike,
                frames: Mapping[str, Sequence[str]] | None = None,
                videos: Mapping[str, str] | None = None) -> list[Path]:
    """One HTML rating page per annotator of a human-eval key, rows as in their sheet."""
    scale = scale_of_key(key)
    return rating_page.write_pages(
        key, pages_dir, title="TikTalk human evaluation: {annotator} ({n} responses)",
        guide_html=_guide(scale), mode="scale", scale=scale.points, frames=frames,
        videos=videos)


def make_sheets(dialogues_path: str | os.PathLike, predictions: Mapping[str, str | os.PathLike], *,
                split: str, n: int, annotators: int | Sequence[str], seed: int, scale: Scale,
                sheets_dir: str | os.PathLike, key_path: str | os.PathLike) -> dict:
    """Sample, write the blinded sheets (CSV) and the key; return the key.

    ``predictions`` maps a system name to its predictions file (``{"dialogue_id", "response"}``
    lines) on ``split``; the order of the mapping is the key's system order.
    """
    if not predictions:
        raise ValueError("no systems to rate")
    dialogues = read_dialogues(dialogues_path, split)
    names = annotation.annotator_names(annotators)
    drawn = draw_dialogues(dialogues, n, seed, where=f"{dialogues_path} ({split}): ")
    preds = responses_by_system(predictions, [d["dialogue_id"] for d in drawn])
    items = build_items(drawn, preds, list(predictions))
    settings = {"scale": scale.as_dict(), "systems": list(predictions), "n_dialogues": n}
    return annotation.write_sheets(items, names, scale.criteria, task=TASK, split=split, seed=seed,
                                   settings=settings, shuffle=True, sheets_dir=sheets_dir,
                                   key_path=key_path, whole_range=(scale.low, scale.high))


def rating_parser(scale: Scale):
    """Row -> ({criterion: int}, problems): a missing, non-integer or off-scale rating."""
    def parse(row: Mapping[str, str]) -> tuple[dict, list[str]]:
        values, problems = {}, []
        for c in scale.criteria:
            text = (row.get(c) or "").strip()
            if not text:
                problems.append(f"missing rating for {c!r}")
                continue
            try:
                v = int(text)
            except ValueError:
                problems.append(f"rating {text!r} for {c!r} is not an integer on the scale "
                                f"{scale.low}..{scale.high}")
                continue
            if not scale.low <= v <= scale.high:
                problems.append(f"rating {v} for {c!r} is off the scale {scale.low}..{scale.high}")
                continue
            values[c] = v
        return values, problems
    return parse


def _mean_sd(values: Sequence[int]) -> tuple[float, float]:
    m = sum(values) / len(values)
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return m, sd


def summarise(ratings: Sequence[annotation.Rating], key: Mapping) -> dict:
    """The scores dict (module doc) from checked ratings."""
    scale = scale_of_key(key)
    systems = list(key["settings"]["systems"])
    by_system: dict[str, dict[str, list[int]]] = {s: {c: [] for c in scale.criteria} for s in systems}
    by_annotator: dict[str, dict[str, dict[str, list[int]]]] = {}
    subjects: dict[str, dict[tuple[str, str], list[int]]] = {c: {} for c in scale.criteria}
    for r in ratings:
        per = by_annotator.setdefault(r.annotator, {}).setdefault(r.system, {c: [] for c in scale.criteria})
        for c in scale.criteria:
            v = r.values[c]
            by_system[r.system][c].append(v)
            per[c].append(v)
            subjects[c].setdefault((r.item, r.system), []).append(v)
    means, sds = {}, {}
    for s in systems:
        stats = {c: _mean_sd(by_system[s][c]) for c in scale.criteria}
        means[s] = {c: stats[c][0] for c in scale.criteria}
        sds[s] = {c: stats[c][1] for c in scale.criteria}
    pooled = {(c, item, system): v for c in scale.criteria for (item, system), v in subjects[c].items()}
    return {
        "version": SCORES_VERSION, "task": TASK, "split": key["split"], "seed": key["seed"],
        "scale": scale.as_dict(), "n_items": len(key["items"]), "annotators": list(key["annotators"]),
        "systems": systems, "means": means, "sd": sds,
        "n_ratings": {s: len(by_system[s][scale.criteria[0]]) for s in systems},
        "annotator_means": {a: {s: {c: sum(v) / len(v) for c, v in per.items()} for s, per in d.items()}
                            for a, d in sorted(by_annotator.items())},
        "kappa": {
            "per_criterion": {c: kappa_of(subjects[c], scale.points).as_dict() for c in scale.criteria},
            "pooled": kappa_of(pooled, scale.points).as_dict(),
        },
    }


def score(ratings_dir: str | os.PathLike, key_path: str | os.PathLike,
          out_json: str | os.PathLike | None = None) -> dict:
    """Check and score the filled sheets in ``ratings_dir`` against the key; write ``out_json``."""
    key = annotation.read_key(key_path, TASK)
    scale = scale_of_key(key)
    if tuple(key["fields"]) != scale.criteria:
        raise ValueError(f"{key_path}: fields {key['fields']} differ from the scale's criteria")
    ratings = annotation.read_filled_sheets(ratings_dir, key, rating_parser(scale))
    result = summarise(ratings, key)
    if out_json is not None:
        write_json(out_json, result)
    return result


def read_scores(path: str | os.PathLike) -> dict:
    """This task's scores file (:func:`score`), version and task checked."""
    return annotation.read_scores(path, TASK, SCORES_VERSION)

