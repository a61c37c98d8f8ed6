"""Maria family (Maria, Maria+Audio, Maria+C3KG and their text ablations): train / predict.

``params`` (the baseline's config block) keys:

    family: maria
    tokenizer: dir or hub name   # optional, else inputs.tokenizer (e.g. bert-base-chinese)
    init: scratch | bert-base-chinese | <dir>   # encoder initialisation (MariaConfig.init)
    model:  {MariaConfig fields}   # use_visual, use_audio, use_knowledge, hidden_size,
                                   # num_hidden_layers, num_attention_heads, intermediate_size
                                   # (scratch only), max_response_len (40), max_text_len (180),
                                   # max_knowledge_len, max_flows, max_frames (50),
                                   # max_audio_frames (50), mask_prob_* (0.7/0.15/0.15),
                                   # beam_size (5), length_penalty (0.3),
                                   # repetition_penalty (3), max_decode_len (40)
    train:  {TrainConfig fields}   # epochs (20), batch_size, lr (3e-5), weight_decay (0.05)...
    decode: {batch_size: 16, beam_size, length_penalty, repetition_penalty, max_len}  # predict

Feature dims (visual_dim / audio_dim) are taken from the feature shards when present.
Outputs in ``out_dir``: ``model.pt`` ({"config", "state_dict"}), ``tokenizer/``,
``checkpoints/last.pt`` and ``train_log.jsonl`` (the shared trainer).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import torch

from tiktalk.baselines.common import (
    format_flows, open_feature_store, read_dialogues, read_knowledge, resolve_tokenizer,
    training_pairs, video_features, write_predictions,
)
from tiktalk.models.maria import Maria, MariaConfig, build_example, collate
from tiktalk.models.tokenizer import decode_tokens, load_tokenizer
from tiktalk.training.trainer import TrainConfig, resolve_device, train as run_training

log = logging.getLogger("tiktalk.baselines.maria")

PARAM_KEYS = {"family", "tokenizer", "init", "model", "train", "decode", "name", "description"}


class MariaDataset(torch.utils.data.Dataset):
    """Examples built once (tokenised, features capped); ``collate`` pads a batch of them."""

    def __init__(self, cfg: MariaConfig, tokenizer, pairs, store=None, knowledge=None):
        self.cfg = cfg
        knowledge = knowledge or {}
        self.examples = []
        for dlg, target in pairs:
            frames, audio = video_features(store, dlg["video_id"], cfg.use_visual, cfg.use_audio)
            know = None
            if cfg.use_knowledge:
                know = format_flows(knowledge.get(dlg["dialogue_id"], []), cfg.max_flows)
            self.examples.append(build_example(cfg, tokenizer, dlg["context"], target, know,
                                               frames, audio))

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict:
        return self.examples[i]

    def collate(self, items):
        return collate(items, self.cfg)


def _check_params(params: dict) -> None:
    unknown = sorted(set(params) - PARAM_KEYS)
    if unknown:
        raise ValueError(f"unknown maria params {unknown}; known: {sorted(PARAM_KEYS)}")


def _model_config(params: dict, tokenizer, store) -> MariaConfig:
    mdict = dict(params.get("model") or {})
    if "init" in params:
        mdict["init"] = params["init"]
    cfg = MariaConfig.from_dict(mdict)
    if store is not None:
        if store.visual_dim and "visual_dim" not in mdict:
            cfg.visual_dim = store.visual_dim
        if store.audio_dim and "audio_dim" not in mdict:
            cfg.audio_dim = store.audio_dim
    cfg.set_tokenizer(tokenizer)
    return cfg


def train(params: dict, inputs, out_dir: Path) -> None:
    _check_params(params)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = resolve_tokenizer(params, inputs)
    store = open_feature_store(inputs.features)
    cfg = _model_config(params, tokenizer, store)
    tcfg = TrainConfig.from_dict({"seed": inputs.seed, **(params.get("train") or {})})
    train_rows = read_dialogues(inputs.dialogues["train"])
    know_train = read_knowledge(inputs.knowledge.get("train")) if cfg.use_knowledge else {}
    train_set = MariaDataset(cfg, tokenizer, training_pairs(train_rows), store, know_train)
    val_set = None
    if "val" in inputs.dialogues:
        val_rows = read_dialogues(inputs.dialogues["val"])
        know_val = read_knowledge(inputs.knowledge.get("val")) if cfg.use_knowledge else {}
        val_set = MariaDataset(cfg, tokenizer, training_pairs(val_rows, all_responses=False),
                               store, know_val)
    torch.manual_seed(tcfg.seed)
    model = Maria(cfg)
    rows = model.set_feature_stats([e["frames"] for e in train_set.examples],
                                   [e["audio"] for e in train_set.examples])
    if rows:
        log.info("maria: features standardised with training statistics (%s)",
                 ", ".join(f"{k}: {n} rows" for k, n in rows.items()))
    log.info("maria: %d train examples, %d params, visual=%s audio=%s knowledge=%s",
             len(train_set), sum(p.numel() for p in model.parameters()), cfg.use_visual,
             cfg.use_audio, cfg.use_knowledge)
    run_training(model, train_set, train_set.collate, tcfg, out_dir, val_set=val_set, params=params)
    if int(os.environ.get("RANK", "0")) == 0:  # rank 0 writes the final model
        tok_dir = out_dir / "tokenizer"
        if tok_dir.exists():
            shutil.rmtree(tok_dir)
        tokenizer.save_pretrained(str(tok_dir))
        model.to("cpu").save(out_dir / "model.pt")


def load(model_dir: Path, device="cpu"):
    model_dir = Path(model_dir)
    model = Maria.load(model_dir / "model.pt", map_location="cpu").to(device)
    tokenizer = load_tokenizer(model_dir / "tokenizer")
    return model, tokenizer


def predict(params: dict, model_dir: Path, inputs, split: str, out_path: Path) -> None:
    _check_params(params)
    dec = dict(params.get("decode") or {})
    batch_size = int(dec.pop("batch_size", 16))
    gen_kwargs = {k: dec.pop(k) for k in ("beam_size", "length_penalty", "repetition_penalty",
                                          "max_len", "min_len") if k in dec}
    if dec:
        raise ValueError(f"unknown maria decode params {sorted(dec)}")
    device = resolve_device((params.get("train") or {}).get("device", "auto"))
    model, tokenizer = load(model_dir, device)
    cfg = model.cfg
    rows = read_dialogues(inputs.dialogues[split])
    store = open_feature_store(inputs.features) if (cfg.use_visual or cfg.use_audio) else None
    know = read_knowledge(inputs.knowledge.get(split)) if cfg.use_knowledge else {}
    data = MariaDataset(cfg, tokenizer, [(d, None) for d in rows], store, know)
    responses: list[str] = []
    from tqdm import tqdm

    for start in tqdm(range(0, len(data), batch_size), desc=f"maria {split}", mininterval=10,
                      unit="batch"):
        batch = data.collate([data[i] for i in range(start, min(len(data), start + batch_size))])
        batch = {k: v.to(device) for k, v in batch.items()}
        for ids in model.generate(batch, **gen_kwargs):
            responses.append(decode_tokens(tokenizer, ids))
    write_predictions(out_path, rows, responses)
