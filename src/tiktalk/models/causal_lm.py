"""The paper's ChatGLM-6B row: a causal LM fine-tuned with LoRA on prompt -> response.

Prompt format: ChatGLM-6B's own fine-tuning template (``ptuning/main.py``: ``[Round k]``,
``问：`` / ``答：``), built from the context turns by :mod:`tiktalk.models.prompts`, whose
docstring gives the template and how TikTalk turns map to its prompt and history (last
``max_history`` rounds kept).

Tokens: the tokenizer's pair template (``build_inputs_with_special_tokens``) (ChatGLM:
``prompt [gMASK] <sop> response <eop>``; a BERT tokenizer: ``[CLS] prompt [SEP] response
[SEP]``), prompt truncated to ``max_source_len`` (keeping its end), response to
``max_target_len``; the loss is on the response tokens (and the end token) only.

The base model (:mod:`tiktalk.models.llm_loading`): ``base_model`` (hub id + ``revision``, or a
local directory) loaded through the class its config registers -- ChatGLM-6B's ``AutoModel`` --
in ``torch_dtype`` straight onto the training device; or, for the demo, a random model built
from ``model_config``. ChatGLM-6B builds its attention mask and 2-D position ids from
``input_ids`` (``[gMASK]``, ``<sop>``): it gets no attention mask in training
(``pass_attention_mask: false``; right padding after ``<eop>`` is harmless under its causal
part) and, in decoding, the 4-D mask and position ids its own tokenizer's ``pad`` builds.

LoRA (peft): ``r``, ``alpha``, ``dropout``, ``target_modules`` from the config (real ChatGLM-6B's
attention projection is ``query_key_value``); the adapters are kept in float32 over a float16
base (fp16 autocast + GradScaler cannot step float16 weights). The model's ``state_dict`` holds
the adapters (and ``modules_to_save``) only, so checkpoints never copy the frozen base.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from tiktalk.models import llm_loading
from tiktalk.models.trainable_state import TrainableStateDict

IGNORE = -100


@dataclass(frozen=True)
class LoraSettings:
    r: int = 8
    alpha: int = 32
    dropout: float = 0.1
    target_modules: tuple[str, ...] = ("query_key_value",)
    # modules trained in full beside the adapters (peft ``modules_to_save``); the demo's
    # randomly initialised tiny base needs its embeddings/head trained to learn anything
    modules_to_save: tuple[str, ...] = ()


@dataclass(frozen=True)
class CausalLMConfig:
    """Built with :func:`tiktalk.settings.from_mapping` (unknown keys are an error)."""

    base_model: str | None = None         # hub id / local dir (paper: THUDM/chatglm-6b)
    revision: str | None = None           # the hub revision (tag or commit) of base_model
    trust_remote_code: bool = False       # only when the config says so (ChatGLM-6B: true)
    model_config: dict | None = None      # demo: a random model built from a config instead
    torch_dtype: str = "float32"          # dtype of the frozen base weights (float16 for 6B)
    gradient_checkpointing: bool = False
    pass_attention_mask: bool = True      # ChatGLM-6B builds its own masks: false there
    lora: LoraSettings = field(default_factory=LoraSettings)
    max_history: int = 3                  # rounds of history in the prompt
    max_source_len: int = 128
    max_target_len: int = 64
    # decoding
    num_beams: int = 1
    do_sample: bool = False
    max_new_tokens: int = 64
    length_penalty: float = 1.0
    repetition_penalty: float = 1.0

    def __post_init__(self):
        if bool(self.base_model) == bool(self.model_config):
            raise ValueError("causal_lm needs exactly one of `base_model` (hub id / local dir) "
                             "and `model_config` (a random demo model)")
        llm_loading.torch_dtype(self.torch_dtype)          # validates the name
        if self.max_source_len < 1 or self.max_target_len < 1:
            raise ValueError("max_source_len and max_target_len must be >= 1")

    @property
    def dtype(self) -> torch.dtype:
        return llm_loading.torch_dtype(self.torch_dtype)



def end_token_id(tokenizer) -> int:
    eos = tokenizer.eos_token_id
    if eos is None:
        eos = tokenizer.sep_token_id
    if eos is None:
        raise ValueError("tokenizer has neither an eos nor a sep token")
    return int(eos)


def _special_ids(tokenizer, prompt_text: str, response: str | None, max_source_len: int,
                 max_target_len: int) -> tuple[list[int], list[int] | None]:
    """(prompt ids, prompt+response ids) with the tokenizer's special tokens.

    The prompt keeps its LAST ``max_source_len`` tokens, the response its first
    ``max_target_len``. Python tokenizers (ChatGLM's remote code) use
    ``build_inputs_with_special_tokens``; transformers-5 ``TokenizersBackend`` tokenizers (which
    no longer have it) use the backend's post-processor (the same template).
    """
    if hasattr(tokenizer, "build_inputs_with_special_tokens"):
        a = tokenizer.encode(prompt_text, add_special_tokens=False)[-max_source_len:] if max_source_len > 0 else []
        prompt = list(tokenizer.build_inputs_with_special_tokens(a))
        if response is None:
            return prompt, None
        b = tokenizer.encode(response, add_special_tokens=False)[:max_target_len]
        return prompt, list(tokenizer.build_inputs_with_special_tokens(a, b))
    backend = tokenizer.backend_tokenizer
    ea = backend.encode(prompt_text, add_special_tokens=False)
    if len(ea.ids) > max_source_len:
        ea.truncate(max_source_len, direction="left")
    prompt = list(backend.post_process(ea, None, add_special_tokens=True).ids)
    if response is None:
        return prompt, None
    eb = backend.encode(response, add_special_tokens=False)
    if len(eb.ids) > max_target_len:
        eb.truncate(max_target_len)
    return prompt, list(backend.post_process(ea, eb, add_special_tokens=True).ids)


def encode_prompt(tokenizer, prompt_text: str, max_source_len: int) -> list[int]:
    """Ids of the prompt with the tokenizer's special tokens, ready for generation."""
    return _special_ids(tokenizer, prompt_text, None, max_source_len, 0)[0]


def encode_example(tokenizer, prompt_text: str, response: str, max_source_len: int,
                   max_target_len: int) -> tuple[list[int], list[int]]:
    """(input_ids, labels) for one training example; labels are -100 on the prompt."""
    prompt_ids, full = _special_ids(tokenizer, prompt_text, response, max_source_len, max_target_len)
    eos = end_token_id(tokenizer)
    if full[: len(prompt_ids)] != prompt_ids:
        raise ValueError("tokenizer's prompt encoding is not a prefix of prompt+response encoding")
    if not full or full[-1] != eos:
        full.append(eos)
    labels = [IGNORE] * len(prompt_ids) + full[len(prompt_ids):]
    return full, labels


# -- model construction ---------------------------------------------------------------------
def build_base_model(cfg: CausalLMConfig, tokenizer=None, device=None):
    """The frozen base LM: ``base_model`` loaded through the class its config registers, in
    ``torch_dtype`` straight onto ``device`` (CUDA); or a random model from ``model_config``
    (``{"model_type": "llama", ...}``) sized to ``tokenizer``, built on ``device``."""
    if cfg.base_model:
        return llm_loading.load_pretrained_lm(cfg.base_model, cfg.revision, cfg.trust_remote_code,
                                              cfg.dtype, device)
    mc = dict(cfg.model_config)
    if tokenizer is not None:
        mc.setdefault("vocab_size", len(tokenizer))
        for key, tid in (("pad_token_id", tokenizer.pad_token_id),
                         ("bos_token_id", tokenizer.cls_token_id if tokenizer.bos_token_id is None
                          else tokenizer.bos_token_id),
                         ("eos_token_id", end_token_id(tokenizer))):
            if tid is not None:
                mc.setdefault(key, tid)
    return llm_loading.build_lm_from_config(mc, cfg.dtype, device)


def apply_lora(base, lora: LoraSettings):
    """Wrap ``base`` with LoRA adapters; only the adapters (and ``modules_to_save``) are
    trainable afterwards, and they are float32 whatever the base's dtype."""
    from peft import LoraConfig, TaskType, get_peft_model

    conf = LoraConfig(task_type=TaskType.CAUSAL_LM, r=lora.r, lora_alpha=lora.alpha,
                      lora_dropout=lora.dropout, target_modules=list(lora.target_modules),
                      modules_to_save=list(lora.modules_to_save) or None, inference_mode=False)
    lm = get_peft_model(base, conf)
    for p in lm.parameters():
        if p.requires_grad and p.dtype != torch.float32:
            p.data = p.data.float()
    return lm


class CausalLMModel(TrainableStateDict, nn.Module):
    """``forward(batch) -> loss`` over right-padded ``input_ids/attention_mask/labels``.

    ``state_dict()`` is the trainable part only (:class:`TrainableStateDict`)."""

    def __init__(self, lm, cfg: CausalLMConfig, pad_id: int, eos_id: int):
        super().__init__()
        self.lm = lm
        self.cfg = cfg
        self.pad_id, self.eos_id = pad_id, eos_id

    def forward(self, batch: dict) -> torch.Tensor:
        if self.cfg.pass_attention_mask:
            return self.lm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                           labels=batch["labels"]).loss
        return self.lm(input_ids=batch["input_ids"], labels=batch["labels"]).loss

    @torch.no_grad()
    def generate(self, inputs: dict, seed: int | None = None) -> list[list[int]]:
        """Decode from LEFT-padded prompts: ``inputs`` is the tokenizer's own ``pad`` output
        (ChatGLM-6B's holds its 4-D mask and 2-D position ids)."""
        if seed is not None:
            torch.manual_seed(seed)
        cfg = self.cfg
        out = self.lm.generate(
            **inputs, num_beams=cfg.num_beams, do_sample=cfg.do_sample,
            max_new_tokens=cfg.max_new_tokens, length_penalty=cfg.length_penalty,
            repetition_penalty=cfg.repetition_penalty, eos_token_id=self.eos_id,
            pad_token_id=self.pad_id,
        )
        return strip_generated(out[:, inputs["input_ids"].shape[1]:].tolist(), self.eos_id, self.pad_id)


def strip_generated(rows: list[list[int]], eos_id: int, pad_id: int | None) -> list[list[int]]:
    result = []
    for row in rows:
        toks = []
        for t in row:
            if t == eos_id or (pad_id is not None and t == pad_id):
                break
            toks.append(t)
        result.append(toks)
    return result
