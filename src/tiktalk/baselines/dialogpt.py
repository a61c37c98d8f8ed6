"""Family ``dialogpt``: the paper's DialoGPT row, GPT2-chitchat fine-tuned on TikTalk.

params (:class:`DialoGPTParams`)::

    train: {...}                   # tiktalk.training.trainer.TrainConfig
    model: {...}                   # tiktalk.models.gpt2_chitchat.ChitchatConfig
    tokenizer: str                 # optional: the checkpoint's own vocab dir (real model);
                                   # default: the pipeline's tokenizer (inputs.tokenizer)
    validate: bool                 # default true: the val split (first reference) as val_set
    predict_batch_size: int        # default 32

Decoding settings in ``model:`` may change between training and ``predict`` (they are read
from ``params`` there). Saved model (``model_dir``): ``model.pt`` = {family, version, config,
gpt2_config, state_dict, provenance (the pretrained GPT-2 and tokenizer it loaded,
:func:`tiktalk.io.provenance`)} and ``tokenizer/``; loading needs no network.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from tiktalk.baselines.common import (cpu_state, device_for, load_model_blob, load_tokenizer_for,
                                      table, write_model)
from tiktalk.baselines.inputs import BaselineInputs
from tiktalk.io import provenance, seed_everything
from tiktalk.data.predictions import write_predictions
from tiktalk.logs import batch_starts
from tiktalk.models.batching import lm_collate as collate, pad_batch
from tiktalk.models.gpt2_chitchat import ChitchatConfig, ChitchatModel, build_lm, encode_dialogue
from tiktalk.models.packed import PackedExamples, pack
from tiktalk.models.tokenizer import decode_tokens, load_tokenizer
from tiktalk.settings import from_mapping, to_mapping
from tiktalk.training.trainer import TrainConfig, train as run_train

log = logging.getLogger(__name__)
FAMILY = "dialogpt"
VERSION = 1


@dataclass(frozen=True)
class DialoGPTParams:
    """A DialoGPT baseline's ``params:`` block."""

    model: ChitchatConfig = field(default_factory=ChitchatConfig)
    train: dict | None = None          # TrainConfig fields
    tokenizer: str | None = None
    validate: bool = True
    predict_batch_size: int = 32


def _params(params: dict) -> DialoGPTParams:
    return from_mapping(DialoGPTParams, params, where="dialogpt params")


def _examples(tok, rows, cfg: ChitchatConfig) -> PackedExamples:
    """Training examples (dialogue ids, labels), packed into flat arrays."""
    def encoded():
        for r in rows:
            ids, labels = encode_dialogue(tok, r["context"], r["responses"][0], cfg)
            yield {"input_ids": ids, "labels": labels}
    return pack(encoded(), {"input_ids": "i", "labels": "i"})


def train(params: dict, inputs: BaselineInputs, out_dir: Path) -> None:
    p = _params(params)
    out_dir = Path(out_dir)
    seed_everything(inputs.seed)
    cfg = p.model
    tok = load_tokenizer_for(p.tokenizer, inputs)
    train_set = _examples(tok, table(inputs, "train"), cfg)
    val_set = None
    if p.validate and "val" in inputs.dialogues:
        val_set = _examples(tok, table(inputs, "val"), cfg)
    lm = build_lm(cfg, tok)
    model = ChitchatModel(lm, cfg, tok.pad_token_id, tok.sep_token_id, tok.unk_token_id)
    pad = tok.pad_token_id
    tcfg = TrainConfig.from_dict(p.train, where="dialogpt params.train")
    run_train(model, train_set, lambda b: collate(b, pad), tcfg, out_dir, val_set=val_set,
              params=params)
    write_model(out_dir, FAMILY, VERSION, to_mapping(cfg), tokenizer=tok,
                gpt2_config=lm.config.to_dict(), state_dict=cpu_state(lm.state_dict()),
                provenance=provenance([cfg.pretrained, p.tokenizer or inputs.tokenizer],
                                      random_init=not cfg.pretrained))


def load_model(model_dir: Path, cfg: ChitchatConfig | None = None) -> tuple[ChitchatModel, object]:
    """(model, tokenizer) from a trained ``model_dir``; ``cfg`` overrides decoding settings."""
    from transformers import GPT2Config, GPT2LMHeadModel

    model_dir = Path(model_dir)
    blob = load_model_blob(model_dir, FAMILY, VERSION)
    cfg = cfg or from_mapping(ChitchatConfig, blob["config"], where=f"{model_dir}/model.pt config")
    lm = GPT2LMHeadModel(GPT2Config.from_dict(blob["gpt2_config"]))
    lm.load_state_dict(blob["state_dict"])
    tok = load_tokenizer(model_dir / "tokenizer")
    return ChitchatModel(lm, cfg, tok.pad_token_id, tok.sep_token_id, tok.unk_token_id).eval(), tok


def predict(params: dict, model_dir: Path, inputs: BaselineInputs, split: str, out_path: Path) -> None:
    p = _params(params)
    model, tok = load_model(model_dir, p.model)
    device = device_for(params)
    model.to(device)
    rows = table(inputs, split)
    bs = p.predict_batch_size
    torch.manual_seed(inputs.seed)
    responses: list[str] = []
    for i in batch_starts(len(rows), bs, f"{FAMILY} predict {split}"):
        prompts = [encode_dialogue(tok, r["context"], None, p.model)[0] for r in rows[i:i + bs]]
        batch = pad_batch([{"input_ids": pr} for pr in prompts], {"input_ids": tok.pad_token_id},
                          mask_from="input_ids", side="left")
        out = model.generate(batch["input_ids"].to(device), batch["attention_mask"].to(device))
        responses.extend(decode_tokens(tok, ids) for ids in out)
    write_predictions(out_path, rows, responses)


@torch.no_grad()
def score_candidates(params: dict, model_dir: Path, inputs: BaselineInputs, split: str,
                     candidates: dict, batch_size: int = 64):
    """Ranking: (summed log-likelihood, tokens), each (dialogues, candidates), of every candidate
    response (its tokens and the closing [SEP]) after the dialogue's prompt, teacher-forced."""
    import dataclasses

    from tiktalk.models.scoring import as_matrix, candidate_pairs, lm_logprob_sums

    p = _params(params)
    cfg = dataclasses.replace(p.model, loss_on_context=False)   # score the response only
    model, tok = load_model(model_dir, cfg)
    device = device_for(params)
    model.to(device)
    pairs = candidate_pairs(table(inputs, split), candidates)
    sums, counts = [], []
    for start in batch_starts(len(pairs), batch_size, f"{FAMILY} rank {split} candidates"):
        examples = []
        for row, text in pairs[start:start + batch_size]:
            ids, labels = encode_dialogue(tok, row["context"], text, cfg)
            examples.append({"input_ids": ids, "labels": labels})
        batch = {k: v.to(device) for k, v in collate(examples, tok.pad_token_id).items()}
        s, n = lm_logprob_sums(model.lm, lambda: model.lm(input_ids=batch["input_ids"],
                                                           attention_mask=batch["attention_mask"]),
                               batch["labels"])
        sums.append(s)
        counts.append(n)
    return as_matrix(sums, counts, candidates["n_candidates"])
