"""Family ``livebot``: Livebot (lancopku/livebot) trained from scratch on TikTalk.

Inputs per dialogue: the video's frame features (``inputs.features``, up to ``max_frames``
uniformly spaced of the stored ones; a video without frames gets one all-zero frame, as
Livebot's ``n_img=0`` does), the context turns as ``[CLS] t1 [SEP] t2 [SEP] ...`` (the last
``context_turns`` turns, cut from the oldest end to ``max_context_len`` tokens; Livebot joins
the surrounding comments the same way), and the target ``[CLS] response [SEP]`` of at most
``max_len`` tokens (Livebot's ``padding(comment, max_len)``). Greedy decoding of ``max_len``
tokens.

params (:class:`LivebotParams`)::

    train: {...}                     # TrainConfig (paper: lr 3e-4, batch 64)
    model: {hidden: 512, ff: 2048, heads: 8, blocks: 6, dropout: 0.1, max_positions: 512}
    max_frames: 50
    context_turns: 5                 # Livebot's n_com
    max_context_len: 100
    max_len: 20
    validate: true
    predict_batch_size: 64

Saved model: ``model.pt`` = {family, version, config (LivebotConfig), state_dict, provenance
(the tokenizer it loaded, :func:`tiktalk.io.provenance`)}, ``tokenizer/``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tiktalk.baselines.common import (cpu_state, device_for, load_model_blob, load_tokenizer_for,
                                      table, write_model)
from tiktalk.baselines.inputs import BaselineInputs
from tiktalk.io import provenance, seed_everything
from tiktalk.logs import batch_starts
from tiktalk.media.store import FeatureStore
from tiktalk.models.packed import PackedExamples
from tiktalk.data.predictions import write_predictions
from tiktalk.models.livebot import Livebot, LivebotConfig
from tiktalk.models.tokenizer import decode_tokens, load_tokenizer
from tiktalk.settings import from_mapping, to_mapping
from tiktalk.training.trainer import TrainConfig, train as run_train

log = logging.getLogger(__name__)
FAMILY = "livebot"
VERSION = 1


@dataclass(frozen=True)
class LivebotParams:
    """A Livebot baseline's ``params:`` block."""

    model: dict | None = None          # LivebotConfig fields but the vocabulary/feature/ids
    train: dict | None = None          # TrainConfig fields
    max_frames: int = 50
    context_turns: int = 5             # Livebot's n_com
    max_context_len: int = 100
    max_len: int = 20
    validate: bool = True
    predict_batch_size: int = 64


def _params(params: dict) -> LivebotParams:
    return from_mapping(LivebotParams, params, where="livebot params")


def uniform_frames(frames: np.ndarray, n: int) -> np.ndarray:
    if len(frames) <= n:
        return frames
    return frames[np.linspace(0, len(frames) - 1, n).round().astype(int)]


def encode_context(tok, context: list[str], turns: int, max_len: int) -> list[int]:
    ids: list[int] = []
    for t in list(context)[-turns:]:
        ids.extend(tok.encode(t, add_special_tokens=False))
        ids.append(tok.sep_token_id)
    return [tok.cls_token_id] + ids[-(max_len - 1):]


def encode_target(tok, response: str, max_len: int) -> list[int]:
    return [tok.cls_token_id] + tok.encode(response, add_special_tokens=False)[: max_len - 2] + [tok.sep_token_id]


class LivebotExamples(torch.utils.data.Dataset):
    """Context (and target) ids packed into flat arrays (:class:`PackedExamples`), one video id
    an example; an item's frames are read from the feature store when it is asked for, so the
    set's memory is its text, never the features."""

    def __init__(self, rows, tok, store: FeatureStore, p: LivebotParams, with_target: bool):
        self.store, self.p = store, p
        self.text = PackedExamples({"context": "i", **({"target": "i"} if with_target else {})})
        self.video_ids: list[str] = []
        interned: dict[str, str] = {}
        for r in rows:
            vid = interned.setdefault(r["video_id"], r["video_id"])
            if vid not in store:
                raise KeyError(f"dialogue {r['dialogue_id']!r}: video {vid!r} is in no feature shard")
            ex = {"context": encode_context(tok, r["context"], p.context_turns, p.max_context_len)}
            if with_target:
                ex["target"] = encode_target(tok, r["responses"][0], p.max_len)
            self.text.append(ex)
            self.video_ids.append(vid)

    def __len__(self) -> int:
        return len(self.text)

    def __getitem__(self, i: int) -> dict:
        return {**self.text[i], "frames": video_frames(self.store, self.video_ids[i], self.p.max_frames)}


def make_examples(rows, tok, store: FeatureStore, p: LivebotParams, with_target: bool) -> LivebotExamples:
    return LivebotExamples(rows, tok, store, p, with_target)


def video_frames(store: FeatureStore, video_id: str, max_frames: int) -> np.ndarray:
    """(n, dim) float32 frames of one video, at most ``max_frames`` uniformly spaced; one
    all-zero frame for a video without frames."""
    frames = uniform_frames(store.frames(video_id), max_frames)
    return frames.astype(np.float32) if len(frames) else np.zeros((1, store.visual_dim), np.float32)


def collate(examples: list[dict], pad_id: int) -> dict:
    b = len(examples)
    nf = max(len(e["frames"]) for e in examples)
    dim = examples[0]["frames"].shape[1]
    frames = torch.zeros(b, nf, dim)
    mask = torch.zeros(b, nf, dtype=torch.bool)
    for i, e in enumerate(examples):
        frames[i, :len(e["frames"])] = torch.from_numpy(e["frames"])
        mask[i, :len(e["frames"])] = True
    batch = {"frames": frames, "frame_mask": mask}
    for key in ("context", "target"):
        if key in examples[0]:
            width = max(len(e[key]) for e in examples)
            t = torch.full((b, width), pad_id, dtype=torch.long)
            for i, e in enumerate(examples):
                t[i, :len(e[key])] = torch.tensor(e[key], dtype=torch.long)
            batch[key] = t
    return batch


def model_config(p: LivebotParams, tok, feature_dim: int) -> LivebotConfig:
    """The LivebotConfig: the ``model:`` block, the vocabulary and the frame-feature dim."""
    return from_mapping(LivebotConfig, {**(p.model or {}), "vocab_size": len(tok),
                                        "feature_dim": feature_dim, "pad_id": tok.pad_token_id,
                                        "bos_id": tok.cls_token_id, "eos_id": tok.sep_token_id},
                        where="livebot params.model")


def _store(inputs: BaselineInputs) -> FeatureStore:
    if not inputs.features:
        raise ValueError("livebot needs frame features (inputs.features is empty)")
    store = FeatureStore(inputs.features)
    if store.visual_dim == 0:
        raise ValueError("livebot: the feature shards hold no frame features at all")
    return store


def train(params: dict, inputs: BaselineInputs, out_dir: Path) -> None:
    p = _params(params)
    out_dir = Path(out_dir)
    seed_everything(inputs.seed)
    tok = load_tokenizer_for(None, inputs)
    store = _store(inputs)
    cfg = model_config(p, tok, store.visual_dim)
    train_set = LivebotExamples(table(inputs, "train"), tok, store, p, with_target=True)
    val_set = None
    if p.validate and "val" in inputs.dialogues:
        val_set = LivebotExamples(table(inputs, "val"), tok, store, p, with_target=True)
    model = Livebot(cfg)
    pad = tok.pad_token_id
    tcfg = TrainConfig.from_dict(p.train, where="livebot params.train")
    run_train(model, train_set, lambda b: collate(b, pad), tcfg, out_dir, val_set=val_set,
              params=params)
    # trained from scratch as in the paper (nothing pretrained to fall back from): the
    # tokenizer is the one weight it loads
    write_model(out_dir, FAMILY, VERSION, to_mapping(cfg), tokenizer=tok,
                state_dict=cpu_state(model.state_dict()), provenance=provenance([inputs.tokenizer]))


def load_model(model_dir: Path) -> tuple[Livebot, object]:
    model_dir = Path(model_dir)
    blob = load_model_blob(model_dir, FAMILY, VERSION)
    model = Livebot(from_mapping(LivebotConfig, blob["config"], where=f"{model_dir}/model.pt config"))
    model.load_state_dict(blob["state_dict"])
    return model.eval(), load_tokenizer(model_dir / "tokenizer")


def predict(params: dict, model_dir: Path, inputs: BaselineInputs, split: str, out_path: Path) -> None:
    p = _params(params)
    model, tok = load_model(model_dir)
    device = device_for(params)
    model.to(device)
    store = _store(inputs)
    if store.visual_dim != model.cfg.feature_dim:
        raise ValueError(f"features are {store.visual_dim}-d, the model was trained on {model.cfg.feature_dim}-d")
    rows = table(inputs, split)
    examples = LivebotExamples(rows, tok, store, p, with_target=False)
    bs = p.predict_batch_size
    responses: list[str] = []
    for i in batch_starts(len(examples), bs, f"{FAMILY} predict {split}"):
        chunk = [examples[j] for j in range(i, min(len(examples), i + bs))]
        batch = {k: v.to(device) for k, v in collate(chunk, tok.pad_token_id).items()}
        for ids in model.generate(batch, max_len=p.max_len):
            responses.append(decode_tokens(tok, ids))
    write_predictions(out_path, rows, responses)


@torch.no_grad()
def score_candidates(params: dict, model_dir: Path, inputs: BaselineInputs, split: str,
                     candidates: dict, batch_size: int = 64):
    """Ranking: (summed log-likelihood, tokens), each (dialogues, candidates), of every candidate
    ``[CLS] response [SEP]`` under the comment decoder (Livebot's own ranking score is the
    summed negative log-likelihood, :meth:`tiktalk.models.livebot.Livebot.token_nll`)."""
    from tiktalk.models.scoring import as_matrix, candidate_pairs

    p = _params(params)
    model, tok = load_model(model_dir)
    device = device_for(params)
    model.to(device)
    store = _store(inputs)
    pairs = candidate_pairs(table(inputs, split), candidates)
    base = {}
    sums, counts = [], []
    for start in batch_starts(len(pairs), batch_size, f"{FAMILY} rank {split} candidates"):
        examples = []
        for row, text in pairs[start:start + batch_size]:
            if row["dialogue_id"] not in base:
                base.clear()
                base[row["dialogue_id"]] = LivebotExamples([row], tok, store, p, with_target=False)[0]
            examples.append({**base[row["dialogue_id"]], "target": encode_target(tok, text, p.max_len)})
        batch = {k: v.to(device) for k, v in collate(examples, tok.pad_token_id).items()}
        sums.append(-model.token_nll(batch))
        counts.append((batch["target"][:, 1:] != model.cfg.pad_id).sum(1))
    return as_matrix(sums, counts, candidates["n_candidates"])
