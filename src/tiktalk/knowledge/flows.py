"""Retrieved C3KG flows: the knowledge table's one writer and one reader, and the text a
model reads for a flow.

Knowledge table (``results/knowledge/{split}.jsonl``, see :mod:`tiktalk.formats`): one row per
dialogue, ``{"dialogue_id": str, "flows": [{"head", "relation", "tail", "score"}, ...]}``, best
flow first. :func:`format_flows` writes flows the way the paper's Figure 3 does
(``<head, emotion flow, tail>``), with :data:`RELATION_TEXT` as the readable relation names;
the tokenizer is trained on those names too (:mod:`tiktalk.models.tokenizer_corpus`).

Imports only layer 0: a model reading knowledge does not depend on the retriever.
"""

from __future__ import annotations

import os
from typing import Iterable, Iterator

from tiktalk.io import iter_jsonl, write_jsonl

# Readable text for C3KG relation names inside the knowledge segment (Figure 3 of the paper
# writes flows as <head, emotion flow, tail>); unknown relations keep their own name.
RELATION_TEXT = {
    "next_sentence": "事件流",
    "next_utterance": "事件流",
    "next_entity": "概念流",
    "emotion_cause": "情感原因",
    "emotion_intent": "情感意图",
    "xIntent": "意图", "xNeed": "需要", "xAttr": "属性", "xReact": "反应", "xEffect": "结果",
    "xWant": "想要", "oEffect": "他人结果", "oWant": "他人想要", "oReact": "他人反应",
    "isBefore": "之前", "isAfter": "之后", "HasSubEvent": "子事件",
}


def relation_text(relation: str) -> str:
    return RELATION_TEXT.get(relation, relation)


def format_flows(flows: Iterable[dict], max_flows: int | None = 5, marker: str = "[KNOW]") -> str:
    """``"[KNOW] head relation tail [KNOW] head relation tail"`` for the first ``max_flows``."""
    parts = []
    for i, f in enumerate(flows):
        if max_flows is not None and i >= max_flows:
            break
        parts.append(f"{marker} {f['head']} {relation_text(f['relation'])} {f['tail']}")
    return " ".join(parts)


def write_knowledge(path: str | os.PathLike, dialogue_ids: Iterable[str],
                    flows: Iterable[list[dict]]) -> int:
    """Write one knowledge row per dialogue (flows best first), atomically; the count. The two
    iterables must have the same length (``flows`` is read to its end: a retriever's progress
    finishes)."""
    rows = ({"dialogue_id": did, "flows": f} for did, f in zip(dialogue_ids, flows, strict=True))
    return write_jsonl(path, rows)


def read_knowledge(path: str | os.PathLike | None) -> dict[str, list[dict]]:
    """dialogue_id -> its flows, best first ({} for no file); a bad row names file and row."""
    return dict(iter_knowledge(path))


def iter_knowledge(path: str | os.PathLike | None) -> Iterator[tuple[str, list[dict]]]:
    """(dialogue_id, flows) row by row, streamed (nothing for no file); a bad row names file
    and line."""
    if path is None:
        return
    for lineno, row in iter_jsonl(path):
        if "dialogue_id" not in row or not isinstance(row.get("flows"), list):
            raise ValueError(f"{path}:{lineno}: expected {{'dialogue_id', 'flows': [...]}}")
        yield row["dialogue_id"], row["flows"]
