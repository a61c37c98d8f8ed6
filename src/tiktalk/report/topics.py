"""Table 5 of the paper, topics: every video goes to the topic category whose name is most
similar to the video's description (paper appendix A.1: Sentence-BERT similarity between the
descriptions and Douyin's category names).

The names are compared in Chinese (the categories' own names, e.g. 美食), the table shows the
paper's English labels (Food). "Others" (其他) is the rest: a video goes there when its best
similarity to the named categories is not above ``min_similarity`` or it has no description; it
is never matched by similarity to the word 其他 itself. The similarity is the knowledge
retriever's (:mod:`tiktalk.knowledge.retrieve`): Sentence-BERT (``kind: sbert``, a
sentence-transformers directory, as the paper) or the embedded character TF-IDF (``char_tfidf``,
the demo), fitted on the names. Ties go to the earlier category in table order.

Videos: every video of the dataset (the manifest: all splits), the paper's 38,703 in its table.
"""

from __future__ import annotations

import os
from typing import Iterable, Mapping, Sequence

import numpy as np

from tiktalk.data.manifest import read_manifest
from tiktalk.data.release import ReleaseFields, read_descriptions
from tiktalk.io import provenance, write_json, write_text_atomic
from tiktalk.report.render import Block, Column, data_source_name, to_csv, to_latex, to_markdown

PAPER_CITATION = "TikTalk, arXiv 2301.05880, Table 5"
PAPER_TABLE5 = {"Science": 8448, "Short play": 4684, "Gaming": 4265, "Lifestyle": 3592,
                "Recording": 2487, "Food": 1973, "Creativity": 1660, "Parenting": 1596,
                "Campus": 822, "Others": 9176}
COLUMNS = (Column("videos", "Videos", "{:,}"), Column("share", "Share (%)", "{:.1f}"),
           Column("paper_videos", "Paper videos", "{:,}"), Column("paper_share", "Paper share (%)", "{:.1f}"))


def similarity(texts: Sequence[str], names: Sequence[str], cfg: Mapping) -> np.ndarray:
    """(len(texts), len(names)) similarity of each text to each name (``cfg``: the retriever's
    kind and model settings)."""
    import pandas as pd

    from tiktalk.knowledge.retrieve import make_retriever

    if not texts:
        return np.zeros((0, len(names)))
    retriever = make_retriever({**cfg, "top_k": 1})
    # the retriever indexes "heads"; here the heads are the category names
    table = pd.DataFrame({"head": list(names), "relation": "next_sentence", "tail": list(names),
                          "weight": 1.0})
    retriever.fit(table)
    order = [retriever.heads.index(n) for n in names]
    return np.asarray(retriever.score(list(texts)), dtype=np.float64)[:, order]


def assign_topics(descriptions: Mapping[str, str], videos: Iterable[str], names: Sequence[str],
                  others: str, cfg: Mapping, min_similarity: float = 0.0) -> dict[str, str]:
    """video_id -> Chinese category name, for every video of ``videos``."""
    named = [n for n in names if n != others]
    videos = list(videos)
    with_text = [v for v in videos if v in descriptions]
    sims = similarity([descriptions[v] for v in with_text], named, cfg)
    out = {v: others for v in videos}
    for v, row in zip(with_text, sims):
        best = int(np.argmax(row))           # first of equal maxima: table order
        if row[best] > min_similarity:
            out[v] = named[best]
    return out


def table5_rows(topics: Mapping[str, str], names: Sequence[tuple[str, str]]) -> list[dict]:
    total = len(topics)
    paper_total = sum(PAPER_TABLE5.values())
    rows = []
    for zh, en in names:
        n = sum(1 for t in topics.values() if t == zh)
        paper = PAPER_TABLE5.get(en)
        rows.append({"topic": en, "name": zh, "videos": n, "share": 100.0 * n / total if total else None,
                     "paper_videos": paper, "paper_share": 100.0 * paper / paper_total if paper else None})
    return rows


def release_descriptions(paths: Iterable[str | os.PathLike], fields: Mapping | None = None) -> dict[str, str]:
    out: dict[str, str] = {}
    f = ReleaseFields.from_config(fields)
    for path in paths:
        out.update(read_descriptions(path, f))
    return out


def caption(n_videos: int, n_described: int, data_source: str, model: str) -> str:
    return (f"Videos per topic on {data_source_name(data_source)} ({n_videos:,} videos, "
            f"{n_described:,} with a description): each video is assigned to the Douyin category "
            f"whose name is most similar to its description ({model}); Others: no similarity "
            f"above the threshold, or no description. Paper: Sentence-BERT, 38,703 TikTalk videos.")


def build_table5(manifest_path, release_paths: Sequence[str | os.PathLike], names: Sequence[tuple[str, str]],
                 others: str, cfg: Mapping, min_similarity: float, out_csv, out_md, out_tex, out_png,
                 out_assignments, *, data_source: str, fields: Mapping | None = None,
                 out_provenance=None) -> list[dict]:
    """Write Table 5 (csv, md, tex), its chart and the per-video assignments (TSV); with
    ``out_provenance``, the similarity model's fingerprint (:func:`tiktalk.io.provenance`)."""
    videos = [r["video_id"] for r in read_manifest(manifest_path)]
    descriptions = release_descriptions(release_paths, fields)
    topics = assign_topics(descriptions, videos, [zh for zh, _ in names], others, cfg, min_similarity)
    rows = table5_rows(topics, names)
    write_text_atomic(out_csv, to_csv(("topic", "name", "videos", "share", "paper_videos", "paper_share"),
                                      rows, {"share": "{:.2f}", "paper_share": "{:.2f}"}))
    label = {zh: en for zh, en in names}
    write_text_atomic(out_assignments, "video_id\ttopic\tname\n" + "".join(
        f"{v}\t{label[t]}\t{t}\n" for v, t in sorted(topics.items())))
    model = cfg.get("model") or cfg.get("kind", "char_tfidf")
    described = sum(1 for v in videos if v in descriptions)
    cap = caption(len(videos), described, data_source, f"similarity: {model}")
    display = [{**r, "label": f"{r['topic']} ({r['name']})"} for r in rows]
    write_text_atomic(out_md, to_markdown(COLUMNS, [Block(None, display)], cap, "Topic"))
    write_text_atomic(out_tex, to_latex(COLUMNS, [Block(None, display)], cap, "tab:table5", "Topic"))
    plot_table5(rows, out_png)
    if out_provenance is not None:
        write_json(out_provenance, provenance([cfg.get("model")] if cfg.get("kind") == "sbert" else []))
    return rows


def plot_table5(rows: Sequence[Mapping], out_png) -> None:
    """Shares of the videos per topic, ours beside the paper's (different dataset sizes)."""
    from tiktalk.report.plots import plot_ours_vs_paper

    plot_ours_vs_paper([r["topic"] for r in rows], [r["share"] for r in rows],
                       [r["paper_share"] for r in rows], out_png, title="Table 5: videos per topic",
                       ylabel="share of videos (%)", figsize=(8, 3.4), rotation=30)
