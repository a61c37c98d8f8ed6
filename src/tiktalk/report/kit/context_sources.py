"""Context-source labelling (paper sec. 3.3.1, Figure 2(b)/(c)).

The paper's task: annotators view a video and its text context and judge, for each response,
whether they *cannot understand it without* (1) the vision context, (2) the audio context,
(3) the text context, (4) external knowledge; several may apply, and a hard response may be
skipped. TikTalk: vision 42%, audio 10%, knowledge 34%, text about 80% (300 sampled videos,
2,472 responses).

:func:`make_sheets` samples ``n_videos`` videos of a split (``Random(seed).sample`` of the
sorted video ids) and takes every dialogue of them; an item is a dialogue, its candidates are
all its responses (the 5 references of a val/test dialogue, the one target of a train
dialogue), in their table order (nothing to blind). Sheet fields: ``vision, audio, text,
knowledge`` (1: cannot be understood without it, 0: can) and ``skip`` (1: skipped).

:func:`score` writes (``version`` :data:`SCORES_VERSION`)::

    {"version", "task": "context-sources", "split", "seed", "n_items", "n_responses",
     "annotators", "judgements", "skipped",
     "shares": {source: {"percent", "yes", "n"}},
     "by_level": {"Level-2": {"n", "percent": {source: percent}}, ... "Level-5+"},
     "kappa": {source: K}}

A share is the percentage of non-skipped judgements (response x annotator) that mark the
source; with one annotator that is the paper's proportion of responses. The level of a
response after k context turns is Level-(k+1) (its depth in the comment thread); levels 5 and
deeper are pooled as Level-5+. Kappa per source (categories 0/1, raters the annotators) is over
the responses that no annotator skipped, so that every subject has the same raters.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Mapping, Sequence

from tiktalk.data.dialogues import read_dialogues
from tiktalk.io import write_json
from tiktalk.report.kit import annotation, rating_page
from tiktalk.report.kit.agreement import kappa_of
from tiktalk.report.paper import FIGURE2_SOURCES, FIGURE2C_LEVELS

TASK = "context-sources"
SCORES_VERSION = 1
SKIP = "skip"
FIELDS = FIGURE2_SOURCES + (SKIP,)
_YES = {"1", "yes", "y", "true", "x"}
_NO = {"0", "no", "n", "false"}


def level_name(level: int) -> str:
    """Figure 2(c)'s bucket of a response level (>= 2)."""
    if level < 2:
        raise ValueError(f"a response level is at least 2 (after one context turn), got {level}")
    return f"Level-{level}" if level < 5 else "Level-5+"


def draw_items(dialogues: Sequence[Mapping], n_videos: int, seed: int,
               where: str = "") -> list[annotation.Item]:
    videos = sorted({d["video_id"] for d in dialogues})
    if n_videos > len(videos):
        raise ValueError(f"{where}asked for {n_videos} videos, but there are only {len(videos)}")
    drawn = random.Random(seed).sample(videos, n_videos)
    by_video: dict[str, list[Mapping]] = {}
    for d in sorted(dialogues, key=lambda d: d["dialogue_id"]):
        by_video.setdefault(d["video_id"], []).append(d)
    chosen = [d for v in drawn for d in by_video[v]]
    return [annotation.Item(name, d["dialogue_id"], d["video_id"], tuple(d["context"]),
                            tuple((f"ref{k}", r) for k, r in enumerate(d["responses"], 1)))
            for name, d in zip(annotation.item_names(len(chosen)), chosen)]


def make_sheets(dialogues_path: str | os.PathLike, *, split: str, n_videos: int,
                annotators: int | Sequence[str], seed: int, sheets_dir: str | os.PathLike,
                key_path: str | os.PathLike) -> dict:
    """Sample videos, write one sheet per annotator and the key; return the key."""
    dialogues = read_dialogues(dialogues_path, split)
    items = draw_items(dialogues, n_videos, seed, where=f"{dialogues_path} ({split}): ")
    names = annotation.annotator_names(annotators)
    settings = {"n_videos": n_videos, "sources": list(FIGURE2_SOURCES)}
    return annotation.write_sheets(items, names, FIELDS, task=TASK, split=split, seed=seed,
                                   settings=settings, shuffle=False, sheets_dir=sheets_dir,
                                   key_path=key_path)


GUIDE = (
    "<p>Watch the video and read the context, then for each response tick every source "
    "without which you <b>cannot understand</b> it: <b>vision</b> (what is seen in the video), "
    "<b>audio</b> (what is heard), <b>text</b> (the earlier comments), <b>knowledge</b> "
    "(external knowledge not in the video or the comments). Several may apply; a response "
    "that needs none is marked <i>labelled</i> with no box ticked. If a response is too hard "
    "to judge, choose <i>skip</i>. Press <b>Download CSV</b> when done and return the file.</p>"
)


def write_pages(key: Mapping, pages_dir: str | os.PathLike,
                frames: Mapping[str, Sequence[str]] | None = None,
                videos: Mapping[str, str] | None = None) -> list[Path]:
    """One HTML labelling page per annotator of a context-sources key."""
    return rating_page.write_pages(
        key, pages_dir, title="TikTalk context sources: {annotator} ({n} responses)",
        guide_html=GUIDE, mode="labels", labels=FIGURE2_SOURCES, skip=SKIP, frames=frames,
        videos=videos)


def _flag(text: str) -> bool | None:
    t = text.strip().lower()
    if t in _YES:
        return True
    if t in _NO:
        return False
    return None


def parse_labels(row: Mapping[str, str]) -> tuple[dict, list[str]]:
    """Row -> ({source: bool, "skip": bool}, problems)."""
    skip_text = (row.get(SKIP) or "").strip()
    cells = {s: (row.get(s) or "").strip() for s in FIGURE2_SOURCES}
    if not skip_text and not any(cells.values()):
        return {}, ["missing labels: neither the sources nor skip are filled in"]
    skip = _flag(skip_text) if skip_text else False
    if skip is None:
        return {}, [f"skip {skip_text!r} is not 0/1 (or yes/no)"]
    problems, values = [], {SKIP: skip}
    for s, text in cells.items():
        if skip:
            if text and _flag(text):
                problems.append(f"skipped, yet {s!r} is marked {text!r}")
            values[s] = False
            continue
        if not text:
            problems.append(f"missing label for {s!r} (0 or 1)")
            continue
        flag = _flag(text)
        if flag is None:
            problems.append(f"label {text!r} for {s!r} is not 0/1 (or yes/no)")
            continue
        values[s] = flag
    return values, problems


def summarise(ratings: Sequence[annotation.Rating], key: Mapping) -> dict:
    levels = {it["item"]: level_name(int(it["level"])) for it in key["items"]}
    kept = [r for r in ratings if not r.values[SKIP]]
    shares = {}
    for s in FIGURE2_SOURCES:
        yes = sum(r.values[s] for r in kept)
        shares[s] = {"percent": 100.0 * yes / len(kept) if kept else None, "yes": int(yes), "n": len(kept)}
    by_level = {}
    for lv in FIGURE2C_LEVELS:
        at = [r for r in kept if levels[r.item] == lv]
        by_level[lv] = {"n": len(at), "percent": {
            s: (100.0 * sum(r.values[s] for r in at) / len(at) if at else None) for s in FIGURE2_SOURCES}}
    per_response: dict[tuple[str, str], list[annotation.Rating]] = {}
    for r in ratings:
        per_response.setdefault((r.item, r.slot), []).append(r)
    unskipped = {k: v for k, v in per_response.items() if not any(r.values[SKIP] for r in v)}
    kappa = {s: kappa_of({k: [int(r.values[s]) for r in v] for k, v in unskipped.items()}, (0, 1)).as_dict()
             for s in FIGURE2_SOURCES}
    return {
        "version": SCORES_VERSION, "task": TASK, "split": key["split"], "seed": key["seed"],
        "n_items": len(key["items"]), "n_responses": sum(len(it["candidates"]) for it in key["items"]),
        "annotators": list(key["annotators"]), "judgements": len(ratings),
        "skipped": len(ratings) - len(kept), "shares": shares, "by_level": by_level, "kappa": kappa,
    }


def score(ratings_dir, key_path, out_json=None) -> dict:
    key = annotation.read_key(key_path, TASK)
    if tuple(key["fields"]) != FIELDS:
        raise ValueError(f"{key_path}: fields {key['fields']}, expected {list(FIELDS)}")
    result = summarise(annotation.read_filled_sheets(ratings_dir, key, parse_labels), key)
    if out_json is not None:
        write_json(out_json, result)
    return result


def read_scores(path) -> dict:
    """This task's scores file (:func:`score`), version and task checked."""
    return annotation.read_scores(path, TASK, SCORES_VERSION)

