"""Dataset helpers shared by the baseline families.

Reading the stage files (dialogue table, knowledge, feature shards), turning C3KG flows into
text, and picking the tokenizer. Formats: :mod:`tiktalk.formats`.

Public API::

    read_dialogues(path) -> list[dict]                  # validated dialogue-table rows
    training_pairs(dialogues) -> list[tuple[dict, str]] # (dialogue, target response)
    read_knowledge(path) -> dict[str, list[dict]]       # dialogue_id -> flows, best first
    format_flows(flows, max_flows=5, marker="[KNOW]") -> str
    relation_text(relation) -> str
    open_feature_store(paths) -> FeatureStore | None
    video_features(store, video_id, visual=True, audio=True) -> (frames|None, audio|None)
    corpus_texts(dialogues) -> Iterator[str]            # for tokenizer training
    resolve_tokenizer(params, inputs)                   # params['tokenizer'] or inputs.tokenizer
    write_predictions(path, dialogues, responses)       # the predictions contract
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np

from tiktalk.io import atomic_path, read_jsonl, write_jsonl

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

REQUIRED_KEYS = ("dialogue_id", "video_id", "context", "responses")


def read_dialogues(path: str | os.PathLike) -> list[dict]:
    """Rows of a dialogue table; a row missing a key or with a bad field names file and id."""
    rows = read_jsonl(path)
    seen: set[str] = set()
    for i, row in enumerate(rows, 1):
        missing = [k for k in REQUIRED_KEYS if k not in row]
        if missing:
            raise ValueError(f"{path}: row {i} lacks {missing}")
        did = row["dialogue_id"]
        if did in seen:
            raise ValueError(f"{path}: dialogue {did!r} appears twice")
        seen.add(did)
        if not isinstance(row["context"], list) or not all(isinstance(t, str) for t in row["context"]):
            raise ValueError(f"{path}: dialogue {did!r}: context must be a list of strings")
        if not isinstance(row["responses"], list) or not all(isinstance(t, str) for t in row["responses"]):
            raise ValueError(f"{path}: dialogue {did!r}: responses must be a list of strings")
    return rows


def training_pairs(dialogues: Sequence[dict], all_responses: bool = True) -> list[tuple[dict, str]]:
    """(dialogue, target) pairs: every response of a row (train has one), or the first only."""
    pairs = []
    for d in dialogues:
        targets = d["responses"] if all_responses else d["responses"][:1]
        pairs.extend((d, r) for r in targets if r.strip())
    return pairs


def read_knowledge(path: str | os.PathLike | None) -> dict[str, list[dict]]:
    if path is None:
        return {}
    out = {}
    for i, row in enumerate(read_jsonl(path), 1):
        if "dialogue_id" not in row or not isinstance(row.get("flows"), list):
            raise ValueError(f"{path}: row {i}: expected {{'dialogue_id', 'flows': [...]}}")
        out[row["dialogue_id"]] = row["flows"]
    return out


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


def open_feature_store(paths: Sequence[str | os.PathLike]):
    from tiktalk.media.store import FeatureStore

    paths = list(paths or [])
    return FeatureStore(paths) if paths else None


def video_features(store, video_id: str, visual: bool = True, audio: bool = True):
    """(frames, audio) float32 arrays (zero rows for a failed video / no audio), None if unused."""
    if not (visual or audio):
        return None, None
    if store is None:
        raise ValueError(f"video {video_id!r}: features requested but no feature shards given")
    frames = store.frames(video_id) if visual else None
    aud = store.audio(video_id) if audio else None
    return frames, aud


def corpus_texts(dialogues: Iterable[dict]) -> Iterator[str]:
    for d in dialogues:
        yield from d["context"]
        yield from d["responses"]


def resolve_tokenizer(params: dict, inputs):
    from tiktalk.models.tokenizer import load_tokenizer

    name = params.get("tokenizer") or getattr(inputs, "tokenizer", None)
    if not name:
        raise ValueError("no tokenizer: set the baseline's `tokenizer:` or pass inputs.tokenizer")
    return load_tokenizer(name)


def write_predictions(path: str | os.PathLike, dialogues: Sequence[dict], responses: Sequence[str]) -> int:
    if len(dialogues) != len(responses):
        raise ValueError(f"{len(responses)} predictions for {len(dialogues)} dialogues")
    return write_jsonl(Path(path), ({"dialogue_id": d["dialogue_id"], "response": r}
                                    for d, r in zip(dialogues, responses)))


def empty_features(dim: int) -> np.ndarray:
    return np.zeros((0, dim), dtype=np.float32)


# -- runtime helpers shared by the family modules ------------------------------------------
def table(inputs, split: str) -> list[dict]:
    """The dialogue table of ``split`` from a BaselineInputs; a missing split names the ones there."""
    if split not in inputs.dialogues:
        raise KeyError(f"no dialogue table for split {split!r} (have {sorted(inputs.dialogues)})")
    return read_jsonl(inputs.dialogues[split])


def is_main_process() -> bool:
    """Rank 0 (or not distributed). From the environment: the trainer owns the process group
    and has already closed it when the family writes its final files."""
    return int(os.environ.get("RANK", "0")) == 0


def device_for(params: dict):
    from tiktalk.training.trainer import resolve_device

    return resolve_device((params.get("train") or {}).get("device") or "auto")


def save_torch(path, obj) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def cpu_state(state_dict) -> dict:
    """A state dict's tensors, detached and on the CPU (what a family's model.pt stores)."""
    return {k: v.detach().cpu() for k, v in state_dict.items()}


def save_model_blob(path, family: str, version: int, config: dict, **fields) -> None:
    """A family's ``model.pt``: ``{"family", "version", "config", **fields}``, written atomically."""
    save_torch(path, {"family": family, "version": version, "config": config, **fields})


def load_model_blob(model_dir, family: str, version: int) -> dict:
    """The ``model.pt`` of ``model_dir``; an error naming it unless ``family`` / ``version`` match."""
    import torch

    path = Path(model_dir) / "model.pt"
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if blob.get("family") != family or blob.get("version") != version:
        raise ValueError(f"{path} is not a {family} v{version} model")
    return blob
