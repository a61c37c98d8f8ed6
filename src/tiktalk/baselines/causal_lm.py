"""Family ``causal_lm``: the paper's ChatGLM-6B row, a causal LM fine-tuned with LoRA.

params (:class:`CausalLMParams`)::

    train: {...}                  # TrainConfig
    model: {...}                  # tiktalk.models.causal_lm.CausalLMConfig (required):
                                  #   paper: base_model THUDM/chatglm-6b (+ revision),
                                  #   trust_remote_code true, torch_dtype float16,
                                  #   pass_attention_mask false, gradient_checkpointing true,
                                  #   lora {r 8, alpha 32, dropout 0.1, target_modules [query_key_value]}
                                  #   demo: model_config {model_type: llama, ...tiny}, the shared
                                  #   WordPiece tokenizer
    validate: true
    predict_batch_size: 16

The tokenizer is the base model's own (``AutoTokenizer``, remote code when the config says so)
when ``base_model`` is set, else the pipeline's (``inputs.tokenizer``).

Frozen weights are loaded once, straight onto the job's device in ``torch_dtype``; nothing of
them is written: ``checkpoints/last.pt`` (the trainer's) and the saved model hold the trainable
tensors only. Saved model (``model_dir``): ``adapter/`` (peft ``save_pretrained``: LoRA weights
and config), ``tokenizer/`` and ``base/`` (the demo's random base only: a pretrained base is
referenced, not copied) and ``model.pt`` = {family, version, config, base ({name_or_path,
revision, fingerprint} of the pretrained base, :func:`weights_identity`; or "base"),
lora_state_dict, provenance (the base and tokenizer directories it loaded,
:func:`tiktalk.io.provenance`; ``random_init`` for the demo's random base)}.
:func:`load_finetuned` rebuilds the fine-tuned LM (the BLIP-2 family uses it through
``params['llm_dir']``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from tiktalk.baselines.common import cpu_state, device_for, load_model_blob, table, write_model
from tiktalk.baselines.inputs import BaselineInputs
from tiktalk.data.predictions import write_predictions
from tiktalk.io import fingerprint, provenance, seed_everything
from tiktalk.logs import batch_starts
from tiktalk.models import llm_loading
from tiktalk.models.batching import lm_collate as collate
from tiktalk.models.causal_lm import (
    CausalLMConfig, CausalLMModel, apply_lora, build_base_model, encode_example, encode_prompt,
    end_token_id,
)
from tiktalk.models.packed import PackedExamples, pack
from tiktalk.models.prompts import build_prompt
from tiktalk.models.tokenizer import decode_tokens, load_tokenizer
from tiktalk.runtime import is_main_process
from tiktalk.settings import from_mapping, to_mapping

log = logging.getLogger(__name__)
FAMILY = "causal_lm"
VERSION = 2


@dataclass(frozen=True)
class CausalLMParams:
    """A causal_lm baseline's ``params:`` block."""

    model: CausalLMConfig | None = None   # required (None only so that the error names it)
    train: dict | None = None             # TrainConfig fields
    validate: bool = True
    predict_batch_size: int = 16

    def __post_init__(self):
        if self.model is None:
            raise ValueError("causal_lm params: no `model:` block (base_model or model_config)")


def _params(params: dict) -> CausalLMParams:
    return from_mapping(CausalLMParams, params, where="causal_lm params")


def weights_identity(name_or_path: str, revision: str | None = None) -> dict:
    """What a saved model records of frozen weights it does not copy: the hub id or directory,
    the revision, and for a directory (``weights/<name>``) its fingerprint (sha256 over its files,
    :func:`tiktalk.io.fingerprint`)."""
    out = {"name_or_path": name_or_path, "revision": revision}
    if Path(name_or_path).is_dir():
        out["fingerprint"] = fingerprint(name_or_path)
    return out


def load_llm_tokenizer(cfg: CausalLMConfig, fallback):
    """The base model's own tokenizer, or the pipeline's (``fallback``: dir/name) for the demo."""
    if cfg.base_model:
        tok = llm_loading.load_pretrained_tokenizer(cfg.base_model, cfg.revision, cfg.trust_remote_code)
    else:
        tok = load_tokenizer(fallback)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def decode_text(tok, ids: list[int]) -> str:
    """Text of generated ids: Chinese-friendly for WordPiece vocabularies."""
    if type(tok).__name__.startswith("Bert"):
        return decode_tokens(tok, ids)
    return tok.decode(ids, skip_special_tokens=True).strip()


def make_examples(rows, tok, cfg: CausalLMConfig) -> PackedExamples:
    """Training examples (prompt + target ids, labels), packed into flat arrays."""
    def encoded():
        for r in rows:
            ids, labels = encode_example(tok, build_prompt(r["context"], cfg.max_history),
                                         r["responses"][0], cfg.max_source_len, cfg.max_target_len)
            yield {"input_ids": ids, "labels": labels}
    return pack(encoded(), {"input_ids": "i", "labels": "i"})


def train(params: dict, inputs: BaselineInputs, out_dir: Path) -> None:
    from peft import get_peft_model_state_dict

    from tiktalk.training.trainer import TrainConfig, train as run_train

    p = _params(params)
    out_dir = Path(out_dir)
    seed_everything(inputs.seed)
    cfg = p.model
    tok = load_llm_tokenizer(cfg, inputs.tokenizer)
    train_set = make_examples(table(inputs, "train"), tok, cfg)
    val_set = None
    if p.validate and "val" in inputs.dialogues:
        val_set = make_examples(table(inputs, "val"), tok, cfg)
    base = build_base_model(cfg, tok, device=device_for(params))
    if not cfg.base_model and is_main_process():
        base.save_pretrained(str(out_dir / "base"))        # frozen: identical after training
    if cfg.gradient_checkpointing:
        llm_loading.enable_activation_checkpointing(base)
    lm = apply_lora(base, cfg.lora)
    model = CausalLMModel(lm, cfg, tok.pad_token_id, end_token_id(tok))
    pad = tok.pad_token_id
    tcfg = TrainConfig.from_dict(p.train, where="causal_lm params.train")
    run_train(model, train_set, lambda b: collate(b, pad), tcfg, out_dir, val_set=val_set, params=params)
    if is_main_process():
        lm.save_pretrained(str(out_dir / "adapter"))
    base = weights_identity(cfg.base_model, cfg.revision) if cfg.base_model else {"name_or_path": "base"}
    # the base directory holds its tokenizer too (its fingerprint computed once: 12 GB for ChatGLM-6B)
    loaded = provenance([base.get("fingerprint") or cfg.base_model or inputs.tokenizer],
                        random_init=not cfg.base_model)
    write_model(out_dir, FAMILY, VERSION, to_mapping(cfg), tokenizer=None if cfg.base_model else tok,
                base=base, lora_state_dict=cpu_state(get_peft_model_state_dict(lm)), provenance=loaded)


def load_finetuned(model_dir: Path, merge: bool = False, device=None):
    """(lm, tokenizer, cfg) of a trained ``model_dir``; ``merge`` folds LoRA into the weights.

    The base is loaded in its training dtype straight onto ``device`` (CUDA), or on the CPU."""
    from peft import PeftModel

    model_dir = Path(model_dir)
    blob = load_model_blob(model_dir, FAMILY, VERSION)
    cfg = from_mapping(CausalLMConfig, blob["config"], f"{model_dir}/model.pt config")
    if cfg.base_model:
        base = build_base_model(cfg, device=device)
        tok = load_llm_tokenizer(cfg, None)
    else:
        base = llm_loading.load_pretrained_lm(str(model_dir / "base"), dtype=cfg.dtype, device=device)
        tok = load_llm_tokenizer(cfg, model_dir / "tokenizer")
    lm = PeftModel.from_pretrained(base, str(model_dir / "adapter"))
    if device is not None:
        lm.to(device)                   # the adapters (the base is there already)
    if merge:
        lm = lm.merge_and_unload()
    lm.eval()
    return lm, tok, cfg


def predict(params: dict, model_dir: Path, inputs: BaselineInputs, split: str, out_path: Path) -> None:
    p = _params(params)
    device = device_for(params)
    lm, tok, _saved = load_finetuned(model_dir, device=device)
    # decoding settings may be changed without re-training: take them from params
    cfg = p.model
    model = CausalLMModel(lm, cfg, tok.pad_token_id, end_token_id(tok)).eval()
    model.to(device)
    rows = table(inputs, split)
    bs = p.predict_batch_size
    tok.padding_side = "left"
    responses: list[str] = []
    for i in batch_starts(len(rows), bs, f"{FAMILY} predict {split}"):
        prompts = [encode_prompt(tok, build_prompt(r["context"], cfg.max_history), cfg.max_source_len)
                   for r in rows[i:i + bs]]
        enc = tok.pad({"input_ids": prompts}, padding=True, return_tensors="pt")
        enc = {k: v.to(device) for k, v in enc.items()}
        for ids in model.generate(enc, seed=inputs.seed + i):
            responses.append(decode_text(tok, ids))
    write_predictions(out_path, rows, responses)


def score_candidates(params: dict, model_dir: Path, inputs: BaselineInputs, split: str,
                     candidates: dict, batch_size: int = 16):
    """Ranking: (summed log-likelihood, tokens), each (dialogues, candidates), of every candidate
    response (and the end token) after the ChatGLM prompt the LM was fine-tuned on,
    teacher-forced through the fine-tuned LM (prompt settings: the trained model's own)."""
    import torch

    from tiktalk.models.scoring import as_matrix, candidate_pairs, lm_logprob_sums

    device = device_for(params)
    lm, tok, cfg = load_finetuned(model_dir, device=device)
    lm.to(device)
    pairs = candidate_pairs(table(inputs, split), candidates)
    sums, counts = [], []
    with torch.no_grad():
        for start in batch_starts(len(pairs), batch_size, f"{FAMILY} rank {split} candidates"):
            examples = []
            for row, text in pairs[start:start + batch_size]:
                ids, labels = encode_example(tok, build_prompt(row["context"], cfg.max_history), text,
                                             cfg.max_source_len, cfg.max_target_len)
                examples.append({"input_ids": ids, "labels": labels})
            batch = {k: v.to(device) for k, v in collate(examples, tok.pad_token_id).items()}
            kwargs = {"attention_mask": batch["attention_mask"]} if cfg.pass_attention_mask else {}
            s, n = lm_logprob_sums(lm, lambda: lm(input_ids=batch["input_ids"], **kwargs), batch["labels"])
            sums.append(s)
            counts.append(n)
    return as_matrix(sums, counts, candidates["n_candidates"])
