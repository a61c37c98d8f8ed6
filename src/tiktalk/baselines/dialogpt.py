"""Family ``dialogpt``: the paper's DialoGPT row, GPT2-chitchat fine-tuned on TikTalk.

params::

    train: {...}                   # tiktalk.training.trainer.TrainConfig
    model: {...}                   # tiktalk.models.gpt2_chitchat.ChitchatConfig
    tokenizer: str                 # optional: the checkpoint's own vocab dir (real model);
                                   # default: the pipeline's tokenizer (inputs.tokenizer)
    validate: bool                 # default true: the val split (first reference) as val_set
    predict_batch_size: int        # default 32

Saved model (``model_dir``): ``model.pt`` = {family, version, config, gpt2_config, state_dict}
and ``tokenizer/``; loading needs no network.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from tiktalk.baselines import BaselineInputs
from tiktalk.baselines.common import (cpu_state, device_for, is_main_process, load_model_blob,
                                      save_model_blob, table, write_predictions)
from tiktalk.io import seed_everything
from tiktalk.models.causal_lm import lm_collate as collate, pad_batch
from tiktalk.models.gpt2_chitchat import ChitchatConfig, ChitchatModel, build_lm, encode_dialogue
from tiktalk.models.tokenizer import decode_tokens, load_tokenizer

log = logging.getLogger(__name__)
FAMILY = "dialogpt"
VERSION = 1


def _examples(tok, rows, cfg: ChitchatConfig) -> list[dict]:
    out = []
    for r in rows:
        ids, labels = encode_dialogue(tok, r["context"], r["responses"][0], cfg)
        out.append({"input_ids": ids, "labels": labels})
    return out


def train(params: dict, inputs: BaselineInputs, out_dir: Path) -> None:
    from tiktalk.training.trainer import TrainConfig, train as run_train

    out_dir = Path(out_dir)
    seed_everything(inputs.seed)
    cfg = ChitchatConfig.from_dict(params.get("model"))
    tok = load_tokenizer(params.get("tokenizer") or inputs.tokenizer)
    train_set = _examples(tok, table(inputs, "train"), cfg)
    val_set = None
    if params.get("validate", True) and "val" in inputs.dialogues:
        val_set = _examples(tok, table(inputs, "val"), cfg)
    lm = build_lm(cfg, tok)
    model = ChitchatModel(lm, cfg, tok.pad_token_id, tok.sep_token_id, tok.unk_token_id)
    pad = tok.pad_token_id
    run_train(model, train_set, lambda b: collate(b, pad), TrainConfig.from_dict(params["train"]),
              out_dir, val_set=val_set, params=params)
    if is_main_process():
        tok.save_pretrained(str(out_dir / "tokenizer"))
        save_model_blob(out_dir / "model.pt", FAMILY, VERSION, cfg.to_dict(),
                        gpt2_config=lm.config.to_dict(), state_dict=cpu_state(lm.state_dict()))


def load_model(model_dir: Path, cfg: ChitchatConfig | None = None) -> tuple[ChitchatModel, object]:
    """(model, tokenizer) from a trained ``model_dir``; ``cfg`` overrides decoding settings."""
    from transformers import GPT2Config, GPT2LMHeadModel

    model_dir = Path(model_dir)
    blob = load_model_blob(model_dir, FAMILY, VERSION)
    cfg = cfg or ChitchatConfig.from_dict(blob["config"])
    lm = GPT2LMHeadModel(GPT2Config.from_dict(blob["gpt2_config"]))
    lm.load_state_dict(blob["state_dict"])
    tok = load_tokenizer(model_dir / "tokenizer")
    return ChitchatModel(lm, cfg, tok.pad_token_id, tok.sep_token_id, tok.unk_token_id).eval(), tok


def predict(params: dict, model_dir: Path, inputs: BaselineInputs, split: str, out_path: Path) -> None:
    cfg = ChitchatConfig.from_dict(params.get("model"))
    model, tok = load_model(model_dir, cfg)
    device = device_for(params)
    model.to(device)
    rows = table(inputs, split)
    bs = int(params.get("predict_batch_size", 32))
    torch.manual_seed(inputs.seed)
    responses: list[str] = []
    for i in range(0, len(rows), bs):
        prompts = [encode_dialogue(tok, r["context"], None, cfg)[0] for r in rows[i:i + bs]]
        batch = pad_batch([{"input_ids": p} for p in prompts], {"input_ids": tok.pad_token_id},
                          mask_from="input_ids", side="left")
        out = model.generate(batch["input_ids"].to(device), batch["attention_mask"].to(device))
        responses.extend(decode_tokens(tok, ids) for ids in out)
    write_predictions(out_path, rows, responses)
