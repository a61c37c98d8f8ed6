"""Family ``livebot``: Livebot (lancopku/livebot) trained from scratch on TikTalk.

Inputs per dialogue: the video's frame features (``inputs.features``, up to ``max_frames``
uniformly spaced of the stored ones; a video without frames gets one all-zero frame, as
Livebot's ``n_img=0`` does), the context turns as ``[CLS] t1 [SEP] t2 [SEP] ...`` (the last
``context_turns`` turns, cut from the oldest end to ``max_context_len`` tokens; Livebot joins
the surrounding comments the same way), and the target ``[CLS] response [SEP]`` of at most
``max_len`` tokens (Livebot's ``padding(comment, max_len)``). Greedy decoding of ``max_len``
tokens.

params::

    train: {...}                     # TrainConfig (paper: lr 3e-4, batch 64)
    model: {hidden: 512, ff: 2048, heads: 8, blocks: 6, dropout: 0.1, max_positions: 512}
    max_frames: 50
    context_turns: 5                 # Livebot's n_com
    max_context_len: 100
    max_len: 20
    validate: true
    predict_batch_size: 64

Saved model: ``model.pt`` = {family, version, config (LivebotConfig), params, state_dict},
``tokenizer/``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from tiktalk.baselines import BaselineInputs
from tiktalk.baselines.common import (cpu_state, device_for, is_main_process, load_model_blob,
                                      save_model_blob, table, write_predictions)
from tiktalk.io import seed_everything
from tiktalk.media.store import FeatureStore
from tiktalk.models.livebot import Livebot, LivebotConfig
from tiktalk.models.tokenizer import decode_tokens, load_tokenizer

log = logging.getLogger(__name__)
FAMILY = "livebot"
VERSION = 1
DEFAULTS = {"max_frames": 50, "context_turns": 5, "max_context_len": 100, "max_len": 20}


def _opt(params: dict, key: str) -> int:
    return int(params.get(key, DEFAULTS[key]))


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


def make_examples(rows, tok, store: FeatureStore, params: dict, with_target: bool) -> list[dict]:
    out = []
    dim = store.visual_dim
    for r in rows:
        frames = uniform_frames(store.frames(r["video_id"]), _opt(params, "max_frames"))
        ex = {"frames": frames.astype(np.float32) if len(frames) else np.zeros((1, dim), np.float32),
              "context": encode_context(tok, r["context"], _opt(params, "context_turns"),
                                        _opt(params, "max_context_len"))}
        if with_target:
            ex["target"] = encode_target(tok, r["responses"][0], _opt(params, "max_len"))
        out.append(ex)
    return out


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


def _config(params: dict, tok, feature_dim: int) -> LivebotConfig:
    model = dict(params.get("model") or {})
    return LivebotConfig.from_dict({**model, "vocab_size": len(tok), "feature_dim": feature_dim,
                                    "pad_id": tok.pad_token_id, "bos_id": tok.cls_token_id,
                                    "eos_id": tok.sep_token_id})


def _store(inputs: BaselineInputs) -> FeatureStore:
    if not inputs.features:
        raise ValueError("livebot needs frame features (inputs.features is empty)")
    store = FeatureStore(inputs.features)
    if store.visual_dim == 0:
        raise ValueError("livebot: the feature shards hold no frame features at all")
    return store


def train(params: dict, inputs: BaselineInputs, out_dir: Path) -> None:
    from tiktalk.training.trainer import TrainConfig, train as run_train

    out_dir = Path(out_dir)
    seed_everything(inputs.seed)
    tok = load_tokenizer(inputs.tokenizer)
    store = _store(inputs)
    cfg = _config(params, tok, store.visual_dim)
    train_set = make_examples(table(inputs, "train"), tok, store, params, with_target=True)
    val_set = None
    if params.get("validate", True) and "val" in inputs.dialogues:
        val_set = make_examples(table(inputs, "val"), tok, store, params, with_target=True)
    model = Livebot(cfg)
    pad = tok.pad_token_id
    run_train(model, train_set, lambda b: collate(b, pad), TrainConfig.from_dict(params["train"]),
              out_dir, val_set=val_set, params=params)
    if is_main_process():
        tok.save_pretrained(str(out_dir / "tokenizer"))
        save_model_blob(out_dir / "model.pt", FAMILY, VERSION, cfg.to_dict(),
                        state_dict=cpu_state(model.state_dict()))


def load_model(model_dir: Path) -> tuple[Livebot, object]:
    model_dir = Path(model_dir)
    blob = load_model_blob(model_dir, FAMILY, VERSION)
    model = Livebot(LivebotConfig.from_dict(blob["config"]))
    model.load_state_dict(blob["state_dict"])
    return model.eval(), load_tokenizer(model_dir / "tokenizer")


def predict(params: dict, model_dir: Path, inputs: BaselineInputs, split: str, out_path: Path) -> None:
    model, tok = load_model(model_dir)
    device = device_for(params)
    model.to(device)
    store = _store(inputs)
    if store.visual_dim != model.cfg.feature_dim:
        raise ValueError(f"features are {store.visual_dim}-d, the model was trained on {model.cfg.feature_dim}-d")
    rows = table(inputs, split)
    examples = make_examples(rows, tok, store, params, with_target=False)
    bs = int(params.get("predict_batch_size", 64))
    responses: list[str] = []
    for i in range(0, len(examples), bs):
        batch = {k: v.to(device) for k, v in collate(examples[i:i + bs], tok.pad_token_id).items()}
        for ids in model.generate(batch, max_len=_opt(params, "max_len")):
            responses.append(decode_tokens(tok, ids))
    write_predictions(out_path, rows, responses)
