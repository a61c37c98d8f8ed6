"""Family ``blip2``: BLIP-2_Img / BLIP-2_Video over the fine-tuned causal LM (frozen).

Image tokens come from the image-feature shards (``inputs.extra_features``, written by
:func:`tiktalk.media.shard.extract_shard` with the frozen BLIP-2 vision model beside the other
encoders), memory-mapped (:class:`~tiktalk.media.image_tokens.ImageTokenIndex`): an example holds
its video id, and the collate function reads that video's selected frames
(:meth:`~tiktalk.media.image_tokens.ImageTokenIndex.video_tokens`: one seeded random frame, or
the mean of ``n_frames`` frames, stored as such by the shard job). A video without frames gets
all-zero tokens.

The LLM and its tokenizer are the ``causal_lm`` baseline's (``params['llm_dir']``, wired by the
workflow's ``llm_from``), loaded in its dtype straight onto the job's device with LoRA merged and
every weight frozen; the prompt is built exactly as that LLM was fine-tuned (its
``max_history`` / ``max_source_len`` / ``max_target_len``), and so are its activation
checkpointing and whether it takes an attention mask (ChatGLM-6B does not).

params (:class:`Blip2Params`)::

    train: {...}                      # TrainConfig
    model: {...}                      # tiktalk.models.blip2.Blip2Config (required): pretrained {name_or_path,
                                      #   revision} (paper) or qformer {...sizes} (demo), mode
                                      #   img|video, n_frames, llm_input, num_beams 5, max_new_tokens 30
    llm_dir: results/models/chatglm   # set by the workflow
    validate: true
    predict_batch_size: 16

Saved model: ``model.pt`` = {family, version, config, llm_dir, llm_base (what the LLM's model.pt
records of its base), qformer_source (the BLIP-2 checkpoint's id, revision and fingerprint),
provenance (the BLIP-2 checkpoint and the LLM's base it loaded, :func:`tiktalk.io.provenance`),
encoder_width, state_dict (queries, Q-Former, llm_proj, ln_vision, text_proj, feature statistics:
never the LLM)}.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tiktalk.baselines.causal_lm import VERSION as CAUSAL_LM_VERSION
from tiktalk.baselines.causal_lm import decode_text, load_finetuned, weights_identity
from tiktalk.baselines.common import cpu_state, device_for, load_model_blob, table, write_model
from tiktalk.baselines.inputs import BaselineInputs
from tiktalk.data.predictions import write_predictions
from tiktalk.io import provenance, seed_everything
from tiktalk.logs import batch_starts
from tiktalk.media.image_tokens import ImageTokenIndex
from tiktalk.models.batching import pad_batch
from tiktalk.models.blip2 import Blip2Config, Blip2Dialogue
from tiktalk.models.causal_lm import encode_example, encode_prompt, end_token_id
from tiktalk.models.packed import PackedExamples, pack
from tiktalk.models.prompts import build_prompt
from tiktalk.settings import from_mapping, to_mapping

log = logging.getLogger(__name__)
FAMILY = "blip2"
VERSION = 2


class VideoTokens:
    """(T, D) float32 tokens per video id, read from the image shards on demand (all-zero
    tokens for a video without frames)."""

    def __init__(self, index: ImageTokenIndex, mode: str, n_frames: int, seed: int):
        self.index, self.mode, self.n_frames, self.seed = index, mode, n_frames, seed

    @property
    def dim(self) -> int:
        return self.index.dim

    def __call__(self, video_id: str) -> np.ndarray:
        if getattr(self, "_last", (None,))[0] == video_id:   # ranking: 100 candidates a video
            return self._last[1]
        tokens = self.index.video_tokens(video_id, self.mode, self.n_frames, self.seed)
        if tokens is None:
            tokens = np.zeros((self.index.tokens_per_frame, self.index.dim), np.float32)
        self._last = (video_id, tokens)
        return tokens


@dataclass(frozen=True)
class Blip2Params:
    """A BLIP-2 baseline's ``params:`` block."""

    model: Blip2Config | None = None  # required (None only so that the error names it)
    train: dict | None = None         # TrainConfig fields
    llm_dir: str | None = None        # the trained causal_lm model dir: set by the workflow (llm_from)
    validate: bool = True
    predict_batch_size: int = 16

    def __post_init__(self):
        if self.model is None:
            raise ValueError("blip2 params: no `model:` block (pretrained or qformer, mode, ...)")


def _params(params: dict) -> Blip2Params:
    return from_mapping(Blip2Params, params, where="blip2 params")


def image_token_id(tok) -> int:
    """The placeholder id for image positions: ``<unk>`` as in VisualGLM-6B, else the pad token."""
    tid = tok.unk_token_id if tok.unk_token_id is not None else tok.pad_token_id
    if tid is None:
        raise ValueError("the LLM tokenizer has neither an unk nor a pad token for image placeholders")
    return int(tid)


def make_examples(rows, tok, llm_cfg, index: ImageTokenIndex, with_target: bool) -> PackedExamples:
    """Prompt (+ target) ids packed into flat arrays, with each example's video id; a video
    that no image shard holds is an error naming the dialogue."""
    def encoded():
        for r in rows:
            if r["video_id"] not in index:
                raise KeyError(f"dialogue {r['dialogue_id']!r}: video {r['video_id']!r} is in no "
                               f"image-feature shard")
            prompt = build_prompt(r["context"], llm_cfg.max_history)
            ex = {"video_id": r["video_id"]}
            if with_target:
                ex["input_ids"], ex["labels"] = encode_example(tok, prompt, r["responses"][0],
                                                               llm_cfg.max_source_len, llm_cfg.max_target_len)
            else:
                ex["prompt"] = encode_prompt(tok, prompt, llm_cfg.max_source_len)
            yield ex
    fields = {"input_ids": "i", "labels": "i"} if with_target else {"prompt": "i"}
    return pack(encoded(), fields, strings=("video_id",))


def collate(examples: list[dict], pad_id: int, tokens: VideoTokens) -> dict:
    batch = pad_batch(examples, {"input_ids": pad_id, "labels": -100}, mask_from="input_ids")
    batch["image_embeds"] = torch.from_numpy(np.stack([tokens(e["video_id"]) for e in examples]))
    return batch


def _llm_dir(p: Blip2Params) -> Path:
    if not p.llm_dir:
        raise ValueError("blip2 needs params['llm_dir'] (the trained causal_lm model dir; `llm_from` in the config)")
    return Path(p.llm_dir)


def _build(cfg: Blip2Config, llm, tok, llm_cfg, width: int) -> Blip2Dialogue:
    return Blip2Dialogue(cfg, llm, width, image_token_id=image_token_id(tok),
                         pass_attention_mask=llm_cfg.pass_attention_mask,
                         checkpointing=llm_cfg.gradient_checkpointing)


def train(params: dict, inputs: BaselineInputs, out_dir: Path) -> None:
    from tiktalk.training.trainer import TrainConfig, train as run_train

    p = _params(params)
    out_dir = Path(out_dir)
    seed_everything(inputs.seed)
    cfg = p.model
    llm_dir = _llm_dir(p)
    llm, tok, llm_cfg = load_finetuned(llm_dir, merge=True, device=device_for(params))
    index = ImageTokenIndex(inputs.extra_features)
    tokens = VideoTokens(index, cfg.mode, cfg.n_frames, inputs.seed)
    rows = {"train": table(inputs, "train")}
    if p.validate and "val" in inputs.dialogues:
        rows["val"] = table(inputs, "val")
    model = _build(cfg, llm, tok, llm_cfg, index.dim)
    log.info("BLIP-2: %d queries, LLM input %s, LLM %s", model.num_queries, model.llm_input, type(llm).__name__)
    train_set = make_examples(rows["train"], tok, llm_cfg, index, with_target=True)
    if model.feature_norm is not None:
        # one read per training video, weighted by its training examples (each example's
        # tokens pass through the standardiser); videos without frames do not count
        uses = Counter(r["video_id"] for r in rows["train"])
        n = model.feature_norm.fit((tokens.index.video_tokens(v, cfg.mode, cfg.n_frames, inputs.seed)
                                    for v in uses), weights=uses.values())
        log.info("image features standardised with training statistics (%d token rows)", n)
    val_set = make_examples(rows["val"], tok, llm_cfg, index, with_target=True) if "val" in rows else None
    pad = tok.pad_token_id
    tcfg = TrainConfig.from_dict(p.train, where="blip2 params.train")
    run_train(model, train_set, lambda b: collate(b, pad, tokens), tcfg, out_dir, val_set=val_set,
              params=params)
    source = weights_identity(cfg.pretrained.name_or_path, cfg.pretrained.revision) if cfg.pretrained else None
    qformer = source and (source.get("fingerprint") or source["name_or_path"])   # hashed once
    loaded = provenance([qformer, llm_cfg.base_model], random_init=not cfg.pretrained or not llm_cfg.base_model)
    llm_blob = load_model_blob(llm_dir, "causal_lm", CAUSAL_LM_VERSION)
    write_model(out_dir, FAMILY, VERSION, to_mapping(cfg), llm_dir=str(llm_dir), llm_base=llm_blob["base"],
                qformer_source=source, encoder_width=index.dim, state_dict=cpu_state(model.state_dict()),
                provenance=loaded)


def load_model(model_dir: Path, params: dict | None = None, device=None):
    """(model, tokenizer, llm_cfg); the LLM comes from ``params['llm_dir']`` or the saved path."""
    model_dir = Path(model_dir)
    blob = load_model_blob(model_dir, FAMILY, VERSION)
    saved = from_mapping(Blip2Config, blob["config"], f"{model_dir}/model.pt config")
    p = _params(params) if params else None
    llm_dir = Path((p and p.llm_dir) or blob["llm_dir"])
    llm, tok, llm_cfg = load_finetuned(llm_dir, merge=True, device=device)
    cfg = saved
    if p is not None:
        # decoding settings may change without re-training; the architecture may not
        cfg = p.model
        if cfg.architecture() != saved.architecture():
            raise ValueError(f"params' BLIP-2 architecture differs from the trained one in {model_dir}")
    model = _build(cfg, llm, tok, llm_cfg, int(blob["encoder_width"]))
    model.load_state_dict(blob["state_dict"])
    return model.eval(), tok, llm_cfg


def predict(params: dict, model_dir: Path, inputs: BaselineInputs, split: str, out_path: Path) -> None:
    device = device_for(params)
    model, tok, llm_cfg = load_model(model_dir, params, device=device)
    model.to(device)
    rows = table(inputs, split)
    index = ImageTokenIndex(inputs.extra_features)
    tokens = VideoTokens(index, model.cfg.mode, model.cfg.n_frames, inputs.seed)
    examples = make_examples(rows, tok, llm_cfg, index, with_target=False)
    bs = _params(params).predict_batch_size
    eos, pad = end_token_id(tok), tok.pad_token_id
    tok.padding_side = "left"

    def pad_fn(ids: list[list[int]]) -> dict:
        return dict(tok.pad({"input_ids": ids}, padding=True, return_tensors="pt"))

    responses: list[str] = []
    for i in batch_starts(len(examples), bs, f"{FAMILY} predict {split}"):
        chunk = [examples[j] for j in range(i, min(len(examples), i + bs))]
        img = torch.from_numpy(np.stack([tokens(e["video_id"]) for e in chunk])).to(device)
        for ids in model.generate(img, None, [e["prompt"].tolist() for e in chunk], pad_id=pad, eos_id=eos,
                                  pad_fn=pad_fn):
            responses.append(decode_text(tok, ids))
    write_predictions(out_path, rows, responses)


@torch.no_grad()
def score_candidates(params: dict, model_dir: Path, inputs: BaselineInputs, split: str,
                     candidates: dict, batch_size: int = 16):
    """Ranking: (summed log-likelihood, tokens), each (dialogues, candidates), of every candidate
    response (and the end token) after [queries][prompt], teacher-forced through the frozen LLM
    exactly as in training (:meth:`tiktalk.models.blip2.Blip2Dialogue.text_logprob_sums`)."""
    from tiktalk.models.scoring import as_matrix, candidate_pairs

    device = device_for(params)
    model, tok, llm_cfg = load_model(model_dir, params, device=device)
    model.to(device)
    tokens = VideoTokens(ImageTokenIndex(inputs.extra_features), model.cfg.mode, model.cfg.n_frames, inputs.seed)
    pairs = candidate_pairs(table(inputs, split), candidates)
    sums, counts = [], []
    for start in batch_starts(len(pairs), batch_size, f"{FAMILY} rank {split} candidates"):
        examples = []
        for row, text in pairs[start:start + batch_size]:
            ids, labels = encode_example(tok, build_prompt(row["context"], llm_cfg.max_history), text,
                                         llm_cfg.max_source_len, llm_cfg.max_target_len)
            examples.append({"video_id": row["video_id"], "input_ids": ids, "labels": labels})
        batch = {k: v.to(device) for k, v in collate(examples, tok.pad_token_id, tokens).items()}
        s, n = model.text_logprob_sums(batch)                 # teacher-forced, as in training
        sums.append(s)
        counts.append(n)
    return as_matrix(sums, counts, candidates["n_candidates"])
