"""Table 6 of the paper, where in the video the interest lies (appendix A.2): for every response
labelled visually relevant, the frame most similar to it under Chinese-CLIP, counted per 20%
time bucket of the video.

* Visually relevant responses: from the Figure 2 labelling sheets (a response whose annotators,
  those who did not skip it, mostly ticked *vision*: :func:`relevant_from_annotations`), or, on
  the demo, every reference of its visual items (:func:`relevant_from_item_types`).
* Frames: the video files the media stage fetched (its fetch tables), decoded with the media
  stage's sampler (:func:`tiktalk.media.clip.decode_clip_frames`: up to ``max_frames`` frames
  at the centres of equal time bins). A separate job, not one more encoder of the media stage:
  only the few videos with labelled responses are needed (the paper: 300 annotated videos out
  of 38,703), and the demo's CLIP is fitted on frames before it can embed any.
* Bucket of a frame at time t of a video of duration D: ``floor(buckets * t / D)`` (capped at the
  last); with frames at bin centres every bucket holds the same number of frames when
  ``max_frames`` is a multiple of ``buckets``.

On the demo, each video's shape is drawn twice as large in one fifth of it (its ``focus``,
``video_attributes.json``), so the right bucket is known: the table then also gives the share
of responses whose most similar frame falls in it (chance: 1 / buckets).
"""

from __future__ import annotations

import math
import os
from typing import Iterable, Mapping, Sequence

import numpy as np

from tiktalk.data.dialogues import read_dialogues
from tiktalk.io import read_json, write_jsonl, write_text_atomic
from tiktalk.media.tables import read_fetch
from tiktalk.report.render import Block, Column, split_phrase, to_csv, to_latex, to_markdown

PAPER_CITATION = "TikTalk, arXiv 2301.05880, Table 6"
PAPER_TABLE6 = (224, 172, 229, 194, 227)       # 0-20%, ..., 80-100%


def bucket_of(t: float, duration: float, buckets: int = 5) -> int:
    if duration <= 0:
        raise ValueError(f"a video duration must be > 0, got {duration}")
    return min(buckets - 1, max(0, int(math.floor(buckets * t / duration))))


def bucket_names(buckets: int) -> list[str]:
    step = 100 / buckets
    return [f"{step * i:g}~{step * (i + 1):g}" for i in range(buckets)]


# ------------------------------------------------------------------ relevant responses


def relevant_from_item_types(dialogues_path, item_types_path, split: str,
                             kinds: Sequence[str] = ("visual",)) -> list[dict]:
    """The demo's rule: every reference of the split's dialogues of the given item types."""
    types = read_json(item_types_path)
    out = []
    for row in read_dialogues(dialogues_path, split):
        if types.get(row["dialogue_id"]) in kinds:
            out.extend({"dialogue_id": row["dialogue_id"], "video_id": row["video_id"], "response": r}
                       for r in row["responses"])
    return out


def relevant_from_annotations(key_path, ratings_dir) -> list[dict]:
    """Responses of the Figure 2 sheets that most of their (non-skipping) annotators could not
    understand without the vision context."""
    from tiktalk.report.kit.annotation import read_filled_sheets, read_key
    from tiktalk.report.kit.context_sources import SKIP, TASK, parse_labels

    key = read_key(key_path, TASK)
    votes: dict[tuple[str, str], list[bool]] = {}
    for r in read_filled_sheets(ratings_dir, key, parse_labels):
        if not r.values[SKIP]:
            votes.setdefault((r.item, r.system), []).append(bool(r.values["vision"]))
    out = []
    for it in key["items"]:
        for ident, text in it["candidates"].items():     # ident: ref1.. (the sheet's hidden id)
            v = votes.get((it["item"], ident), [])
            if v and sum(v) * 2 > len(v):
                out.append({"dialogue_id": it["dialogue_id"], "video_id": it["video_id"], "response": text})
    return out


def video_files(fetch_paths: Iterable[str | os.PathLike]) -> dict[str, str]:
    """video_id -> the local file the media stage fetched (ok rows of its fetch tables)."""
    out = {}
    for path in fetch_paths:
        for row in read_fetch(path):
            if row["status"] == "ok" and row["path"]:
                out[row["video_id"]] = row["path"]
    return out


# ------------------------------------------------------------------ matching


def match_frames(responses: Sequence[Mapping], files: Mapping[str, str], scorer, max_frames: int,
                 buckets: int = 5) -> tuple[list[dict], dict[str, str]]:
    """(one record per response: its most similar frame's time, the video's duration, the
    bucket and the similarity; {video_id: why it was left out})."""
    from tiktalk.media.clip import decode_clip_frames
    from tiktalk.media.decode import DecodeError

    by_video: dict[str, list[Mapping]] = {}
    for r in responses:
        by_video.setdefault(r["video_id"], []).append(r)
    out, skipped = [], {}
    for vid in sorted(by_video):
        if vid not in files:
            skipped[vid] = "no fetched video file"
            continue
        try:
            frames, times, duration = decode_clip_frames(files[vid], scorer.image_size, max_frames)
        except DecodeError as exc:
            skipped[vid] = f"decode: {exc}"
            continue
        if not len(frames) or duration <= 0:
            skipped[vid] = "no frames or no duration"
            continue
        img = scorer.encode_images(frames)
        txt = scorer.encode_texts([r["response"] for r in by_video[vid]])
        sims = txt @ img.T
        for r, row in zip(by_video[vid], sims):
            best = int(np.argmax(row))
            out.append({**r, "frame_time": float(times[best]), "duration": float(duration),
                        "bucket": bucket_of(float(times[best]), duration, buckets),
                        "similarity": float(row[best]), "n_frames": int(len(frames))})
    return out, skipped


def demo_clip_training_set(responses: Sequence[Mapping], files: Mapping[str, str],
                           attributes: Mapping[str, Mapping], size: int, max_frames: int,
                           buckets: int = 5) -> tuple[list[np.ndarray], list[str], list[np.ndarray]]:
    """The demo CLIP's training data: per (video, response), the video's frames, the response
    and which frames lie in the video's focus segment (``video_attributes.json``)."""
    from tiktalk.media.clip import decode_clip_frames

    cache: dict[str, tuple] = {}
    frames, texts, positives = [], [], []
    for r in responses:
        vid = r["video_id"]
        focus = attributes.get(vid, {}).get("focus")
        if vid not in files or focus is None:
            continue
        if vid not in cache:
            cache[vid] = decode_clip_frames(files[vid], size, max_frames)
        f, times, duration = cache[vid]
        frames.append(f)
        texts.append(r["response"])
        positives.append(np.array([bucket_of(t, duration, buckets) == focus for t in times]))
    if not texts:
        raise ValueError("no training video with a fetched file and a focus segment")
    return frames, texts, positives


def table6_rows(matches: Sequence[Mapping], buckets: int = 5) -> list[dict]:
    counts = [0] * buckets
    for m in matches:
        counts[m["bucket"]] += 1
    total = sum(counts)
    paper = PAPER_TABLE6 if buckets == len(PAPER_TABLE6) else (None,) * buckets
    paper_total = sum(PAPER_TABLE6)
    return [{"segment": name, "responses": n, "share": 100.0 * n / total if total else None,
             "paper_responses": p, "paper_share": 100.0 * p / paper_total if p is not None else None}
            for name, n, p in zip(bucket_names(buckets), counts, paper)]


def focus_agreement(matches: Sequence[Mapping], attributes: Mapping[str, Mapping]) -> dict:
    """The demo's check: share of responses whose bucket is their video's focus segment."""
    known = [m for m in matches if attributes.get(m["video_id"], {}).get("focus") is not None]
    hits = sum(1 for m in known if m["bucket"] == attributes[m["video_id"]]["focus"])
    return {"n": len(known), "hits": hits, "percent": 100.0 * hits / len(known) if known else None}


COLUMNS = (Column("responses", "Relevant responses", "{:,}"), Column("share", "Share (%)", "{:.1f}"),
           Column("paper_responses", "Paper", "{:,}"), Column("paper_share", "Paper share (%)", "{:.1f}"))


def caption(n: int, n_videos: int, split: str, data_source: str, model: str, relevant: str) -> str:
    how = ("a majority of its annotators ticked vision (Figure 2 labelling)" if relevant == "annotations"
           else "every reference of the demo's visual items")
    return (f"Where in the video the interest lies: {n} visually relevant responses ({how}) of "
            f"{n_videos} videos of {split_phrase(split, data_source)}, counted by the time segment "
            f"of the frame most similar to the response ({model}). Paper: Chinese-CLIP, 1,046 "
            f"responses.")


def build_table6(matches: Sequence[Mapping], skipped: Mapping[str, str], out_csv, out_md, out_tex, out_png,
                 out_matches, *, buckets: int, split: str, data_source: str, model: str, relevant: str,
                 attributes: Mapping[str, Mapping] | None = None) -> list[dict]:
    rows = table6_rows(matches, buckets)
    write_jsonl(out_matches, matches)
    write_text_atomic(out_csv, to_csv(("segment", "responses", "share", "paper_responses", "paper_share"),
                                      rows, {"share": "{:.2f}", "paper_share": "{:.2f}"}))
    n_videos = len({m["video_id"] for m in matches})
    cap = caption(len(matches), n_videos, split, data_source, model, relevant)
    notes = []
    if skipped:
        notes.append(f"{len(skipped)} video(s) left out (no file or not decodable).")
    if attributes:
        agree = focus_agreement(matches, attributes)
        if agree["n"]:
            notes.append(f"Demo check: the most similar frame lies in the video's focus segment "
                         f"(where its shape is drawn large) for {agree['hits']} of {agree['n']} "
                         f"responses ({agree['percent']:.1f}%; chance {100 / buckets:.0f}%).")
    display = [{**r, "label": f"{r['segment']}%"} for r in rows]
    md = to_markdown(COLUMNS, [Block(None, display)], cap, "Time segment")
    md += "".join(f"\n{n}\n" for n in notes)
    write_text_atomic(out_md, md)
    write_text_atomic(out_tex, to_latex(COLUMNS, [Block(None, display)], cap, "tab:table6",
                                        "Time segment (%)", notes))
    plot_table6(rows, out_png)
    return rows


def plot_table6(rows: Sequence[Mapping], out_png) -> None:
    from tiktalk.report.plots import plot_ours_vs_paper

    plot_ours_vs_paper([f"{r['segment']}%" for r in rows], [r["share"] for r in rows],
                       [r["paper_share"] for r in rows], out_png,
                       title="Table 6: time segment of the most similar frame",
                       ylabel="share of relevant responses (%)", figsize=(6, 3.2))
