"""Family ``blip2``: BLIP-2_Img / BLIP-2_Video over the fine-tuned causal LM (frozen).

Image features come from the image-encoder shards (``inputs.extra_features``, written by
:func:`tiktalk.media.shard.extract_shard`, with the other encoders); per video they are reduced
once, while loading, to the (T, D) tokens the model reads (:func:`~tiktalk.models.blip2.select_frames`:
one seeded random frame, or the mean of ``n_frames`` frames) and kept as float16. A video
without frames gets all-zero features.

The LLM and its tokenizer are the ``causal_lm`` baseline's (``params['llm_dir']``, wired by the
workflow's ``llm_from``), with LoRA merged and every weight frozen; the prompt is built exactly
as that LLM was fine-tuned (its ``max_history`` / ``max_source_len`` / ``max_target_len``).

params::

    train: {...}                      # TrainConfig
    model: {...}                      # tiktalk.models.blip2.Blip2Config (qformer: {...},
                                      #   mode img|video, n_frames, num_beams 5, max_new_tokens 30)
    llm_dir: results/models/chatglm   # set by the workflow
    validate: true
    predict_batch_size: 16

When ``model.qformer.encoder_width`` is not given it is taken from the features.
Saved model: ``model.pt`` = {family, version, config, llm_dir, state_dict (ln_vision, Q-Former,
llm_proj only)}.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from tiktalk.baselines.causal_lm import decode_text, load_finetuned
from tiktalk.baselines.common import cpu_state, device_for, load_model_blob, save_model_blob, table
from tiktalk.baselines.inputs import BaselineInputs
from tiktalk.data.predictions import write_predictions
from tiktalk.io import seed_everything
from tiktalk.media.store import iter_image_tokens
from tiktalk.models.batching import pad_batch
from tiktalk.models.blip2 import Blip2Config, Blip2Dialogue, select_frames
from tiktalk.models.causal_lm import encode_example, encode_prompt, end_token_id
from tiktalk.models.prompts import build_prompt
from tiktalk.runtime import is_main_process

log = logging.getLogger(__name__)
FAMILY = "blip2"
VERSION = 1


def load_video_features(paths: Iterable[Path], mode: str, n_frames: int, seed: int,
                        keep: set[str] | None = None) -> tuple[dict[str, np.ndarray | None], int, int]:
    """video_id -> (T, D) float16 (None: no frames), plus (T, D) of the shards."""
    out: dict[str, np.ndarray | None] = {}
    t = d = 0
    for vid, frames in iter_image_tokens(paths):
        t, d = frames.shape[1], frames.shape[2]
        if keep is not None and vid not in keep:
            continue
        sel = select_frames(frames, mode, n_frames, seed, vid)
        out[vid] = None if sel is None else sel.astype(np.float16)
    if not out:
        raise ValueError("blip2: no image features for the dialogues' videos (inputs.extra_features)")
    return out, t, d


def _image(feats: dict, vid: str, t: int, d: int) -> np.ndarray:
    if vid not in feats:
        raise KeyError(f"video {vid!r} is in no image-feature shard")
    x = feats[vid]
    return np.zeros((t, d), np.float16) if x is None else x


def make_examples(rows, tok, llm_cfg, feats, t, d, with_target: bool) -> list[dict]:
    out = []
    for r in rows:
        prompt = build_prompt(r["context"], llm_cfg.max_history)
        ex = {"image": _image(feats, r["video_id"], t, d)}
        if with_target:
            ex["input_ids"], ex["labels"] = encode_example(tok, prompt, r["responses"][0],
                                                           llm_cfg.max_source_len, llm_cfg.max_target_len)
        else:
            ex["prompt"] = encode_prompt(tok, prompt, llm_cfg.max_source_len)
        out.append(ex)
    return out


def collate(examples: list[dict], pad_id: int) -> dict:
    batch = pad_batch(examples, {"input_ids": pad_id, "labels": -100}, mask_from="input_ids")
    batch["image_embeds"] = torch.from_numpy(np.stack([e["image"] for e in examples]).astype(np.float32))
    return batch


def _config(params: dict, width: int) -> Blip2Config:
    model = dict(params.get("model") or {})
    qf = dict(model.get("qformer") or {})
    qf.setdefault("encoder_width", width)
    cfg = Blip2Config.from_dict({**model, "qformer": qf})
    if cfg.qformer.encoder_width != width:
        raise ValueError(f"qformer.encoder_width={cfg.qformer.encoder_width} but the image features are {width}-d")
    return cfg


def _llm_dir(params: dict) -> Path:
    if not params.get("llm_dir"):
        raise ValueError("blip2 needs params['llm_dir'] (the trained causal_lm model dir; `llm_from` in the config)")
    return Path(params["llm_dir"])


def _needed(inputs: BaselineInputs, splits) -> tuple[dict[str, list[dict]], set[str]]:
    rows = {s: table(inputs, s) for s in splits}
    return rows, {r["video_id"] for rs in rows.values() for r in rs}


def train(params: dict, inputs: BaselineInputs, out_dir: Path) -> None:
    from tiktalk.training.trainer import TrainConfig, train as run_train

    out_dir = Path(out_dir)
    seed_everything(inputs.seed)
    llm_dir = _llm_dir(params)
    llm, tok, llm_cfg = load_finetuned(llm_dir, merge=True)
    splits = ["train"] + (["val"] if params.get("validate", True) and "val" in inputs.dialogues else [])
    rows, videos = _needed(inputs, splits)
    mp = params.get("model") or {}
    defaults = Blip2Config()
    feats, t, d = load_video_features(inputs.extra_features, mp.get("mode", defaults.mode),
                                      int(mp.get("n_frames", defaults.n_frames)), inputs.seed, keep=videos)
    cfg = _config(params, d)
    model = Blip2Dialogue(cfg, llm)
    if cfg.qformer_init:
        from transformers import BertModel

        from tiktalk.models.qformer import init_from_bert

        fresh = init_from_bert(model.qformer, BertModel.from_pretrained(cfg.qformer_init).state_dict())
        log.info("Q-Former initialised from %s; %d tensors start random", cfg.qformer_init, len(fresh))
    train_set = make_examples(rows["train"], tok, llm_cfg, feats, t, d, with_target=True)
    if model.feature_norm is not None:
        n = model.feature_norm.fit([feats[r["video_id"]] for r in rows["train"]])
        log.info("image features standardised with training statistics (%d token rows)", n)
    val_set = make_examples(rows["val"], tok, llm_cfg, feats, t, d, with_target=True) if "val" in rows else None
    pad = tok.pad_token_id
    run_train(model, train_set, lambda b: collate(b, pad), TrainConfig.from_dict(params["train"]),
              out_dir, val_set=val_set, params=params)
    if is_main_process():
        save_model_blob(out_dir / "model.pt", FAMILY, VERSION, cfg.to_dict(), llm_dir=str(llm_dir),
                        state_dict=cpu_state(model.trainable_state_dict()))


def load_model(model_dir: Path, params: dict | None = None):
    """(model, tokenizer, llm_cfg); the LLM comes from ``params['llm_dir']`` or the saved path."""
    model_dir = Path(model_dir)
    blob = load_model_blob(model_dir, FAMILY, VERSION)
    saved = Blip2Config.from_dict(blob["config"])
    llm_dir = Path((params or {}).get("llm_dir") or blob["llm_dir"])
    llm, tok, llm_cfg = load_finetuned(llm_dir, merge=True)
    cfg = saved
    if params and params.get("model"):
        # decoding settings may change without re-training; the architecture may not
        cfg = _config(params, saved.qformer.encoder_width)
        if cfg.qformer != saved.qformer:
            raise ValueError(f"params' Q-Former config differs from the trained one in {model_dir}")
    model = Blip2Dialogue(cfg, llm)
    model.load_trainable_state_dict(blob["state_dict"])
    return model.eval(), tok, llm_cfg


def predict(params: dict, model_dir: Path, inputs: BaselineInputs, split: str, out_path: Path) -> None:
    model, tok, llm_cfg = load_model(model_dir, params)
    device = device_for(params)
    model.to(device)
    rows, videos = _needed(inputs, [split])
    feats, t, d = load_video_features(inputs.extra_features, model.cfg.mode, model.cfg.n_frames,
                                      inputs.seed, keep=videos)
    examples = make_examples(rows[split], tok, llm_cfg, feats, t, d, with_target=False)
    bs = int(params.get("predict_batch_size", 16))
    eos, pad = end_token_id(tok), tok.pad_token_id
    responses: list[str] = []
    for i in range(0, len(examples), bs):
        chunk = examples[i:i + bs]
        img = torch.from_numpy(np.stack([e["image"] for e in chunk]).astype(np.float32)).to(device)
        for ids in model.generate(img, None, [e["prompt"] for e in chunk], pad_id=pad, eos_id=eos):
            responses.append(decode_text(tok, ids))
    write_predictions(out_path, rows[split], responses)


@torch.no_grad()
def score_candidates(params: dict, model_dir: Path, inputs: BaselineInputs, split: str,
                     candidates: dict, batch_size: int = 16):
    """Ranking: (summed log-likelihood, tokens), each (dialogues, candidates), of every candidate
    response (and the end token) after [queries][prompt], teacher-forced through the frozen LLM
    as in training (:meth:`tiktalk.models.blip2.Blip2Dialogue.forward`)."""
    from tiktalk.models.scoring import as_matrix, candidate_pairs, token_logprob_sums

    model, tok, llm_cfg = load_model(model_dir, params)
    device = device_for(params)
    model.to(device)
    rows, videos = _needed(inputs, [split])
    feats, t, d = load_video_features(inputs.extra_features, model.cfg.mode, model.cfg.n_frames,
                                      inputs.seed, keep=videos)
    pairs = candidate_pairs(rows[split], candidates)
    sums, counts = [], []
    for start in range(0, len(pairs), batch_size):
        examples = []
        for row, text in pairs[start:start + batch_size]:
            ids, labels = encode_example(tok, build_prompt(row["context"], llm_cfg.max_history), text,
                                         llm_cfg.max_source_len, llm_cfg.max_target_len)
            examples.append({"input_ids": ids, "labels": labels,
                             "image": _image(feats, row["video_id"], t, d)})
        batch = {k: v.to(device) for k, v in collate(examples, tok.pad_token_id).items()}
        q = model.query_embeds(batch["image_embeds"])
        text_emb = model._text_embeds(batch["input_ids"])
        nq = q.shape[1]
        embeds = torch.cat([q.to(text_emb.dtype), text_emb], dim=1)
        mask = torch.cat([torch.ones(q.shape[0], nq, dtype=batch["attention_mask"].dtype, device=device),
                          batch["attention_mask"]], dim=1)
        logits = model.llm(inputs_embeds=embeds, attention_mask=mask).logits[:, nq:]
        s, n = token_logprob_sums(logits, batch["labels"])   # text position i predicts i + 1
        sums.append(s)
        counts.append(n)
    return as_matrix(sums, counts, candidates["n_candidates"])
