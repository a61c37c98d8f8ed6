"""BLIP-2 for dialogue (paper sec. 4.2, Fig. 3a): frozen image tokens -> Q-Former -> linear
projection -> soft prompt in front of the frozen, fine-tuned LLM.

Parts, as in BLIP-2 (LAVIS ``blip2_opt.py``) and transformers' ``Blip2ForConditionalGeneration``:

* the frozen image encoder's per-frame patch tokens (EVA ViT-g/14 of a BLIP-2 checkpoint; its
  ``ln_vision`` is the vision model's ``post_layernorm``, already applied in the media stage);
* ``query_tokens`` (``num_queries`` learned queries) and a ``transformers.Blip2QFormerModel``
  (self-attention over the queries, cross-attention to the image every ``cross_attention_freq``
  layers), loaded from a released BLIP-2 checkpoint (``pretrained``: its ``query_tokens`` and
  ``qformer.*`` tensors, nothing else of it) or built at random from ``qformer`` (the demo);
* ``llm_proj``: a new ``nn.Linear(qformer_hidden, llm_hidden)``;
* optional (not in BLIP-2): ``standardize_features`` (training-set mean/std per dimension) and a
  trainable ``ln_vision`` LayerNorm in front of the Q-Former;
* optional (not in BLIP-2, InstructBLIP's "instruction-aware" Q-Former, Dai et al. 2023):
  ``instruction_aware`` feeds the prompt's tokens (the frozen LLM's input embeddings through a
  new ``text_proj``) into the Q-Former's self-attention beside the queries; they do not
  cross-attend to the image, and only the queries' outputs go to the LLM. The queries can then
  carry the image for a prompt that asks about the video and stay out of the way for one that
  does not. Random Q-Former only (``qformer:``): a released BLIP-2 Q-Former has no trained
  text branch for it. Why the demo uses it: ``docs/demo.md`` (a tiny frozen LLM cannot ignore
  a prefix that its prompt does not need, and a prompt-blind Q-Former learns to be ignored).

Only the Q-Former, the queries, ``llm_proj`` (and ``ln_vision``, ``text_proj``) train; the model's
``state_dict`` holds exactly those (plus the feature statistics), never the LLM.

How the queries reach the LLM (``llm_input``):

* ``inputs_embeds``: prepended to the embedded text and passed as ``inputs_embeds`` with a 2-D
  mask -- for LLMs that support it natively (llama, qwen2, ...);
* ``placeholders``: VisualGLM-6B's way, for ChatGLM-6B, which builds its masks and 2-D position
  ids from ``input_ids`` and cannot be driven by embeddings alone: ``num_queries`` placeholder
  tokens go in front of the prompt ids and their input embeddings are replaced by the projected
  queries (:mod:`tiktalk.models.embedding_injection`);
* ``auto``: ``inputs_embeds`` for a model class transformers ships, ``placeholders`` for remote
  code.

The frozen LLM is in eval mode, except under activation checkpointing (which transformers
applies in training mode only): then it is in training mode with every dropout set to 0, the
same function as eval mode.

Frame handling (TikTalk's two settings): BLIP-2_Img feeds the tokens of ONE frame of the video;
BLIP-2_Video feeds the element-wise mean of several frames' tokens (see :func:`frame_indices`).
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from tiktalk.models import llm_loading
from tiktalk.models.embedding_injection import EmbeddingInjector
from tiktalk.models.features import FeatureStandardizer
from tiktalk.models.trainable_state import TrainableStateDict

log = logging.getLogger(__name__)
IGNORE = -100
MODES = ("img", "video")
LLM_INPUTS = ("auto", "inputs_embeds", "placeholders")


@dataclass(frozen=True)
class QFormerSettings:
    """A randomly initialised Q-Former (``transformers.Blip2QFormerConfig`` fields)."""

    num_queries: int = 32
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    cross_attention_freq: int = 2
    dropout: float = 0.1
    attention_dropout: float = 0.1


@dataclass(frozen=True)
class PretrainedQFormer:
    """Q-Former and query tokens of a released BLIP-2 checkpoint (hub id or local directory)."""

    name_or_path: str
    revision: str | None = None


@dataclass(frozen=True)
class Blip2Config:
    """Built with :func:`tiktalk.settings.from_mapping`; exactly one of ``qformer`` / ``pretrained``."""

    pretrained: PretrainedQFormer | None = None
    qformer: QFormerSettings | None = None
    mode: str = "img"                 # img: one random frame; video: mean of n_frames frames
    n_frames: int = 8                 # video mode: frames averaged (uniformly chosen)
    ln_vision: bool = False           # an extra trainable LayerNorm on the image tokens
    # per-dimension standardisation of the frozen encoder's tokens with training-set statistics
    # (not in BLIP-2; the demo's random ViT gives every video nearly the same tokens)
    standardize_features: bool = False
    llm_input: str = "auto"           # auto | inputs_embeds | placeholders (module docstring)
    # InstructBLIP's prompt-aware queries (module docstring); random Q-Former only
    instruction_aware: bool = False
    # prompt building (max_history, max_source_len, max_target_len) is the LLM's own
    num_beams: int = 5
    max_new_tokens: int = 30
    length_penalty: float = 1.0
    repetition_penalty: float = 1.0

    def __post_init__(self):
        if (self.pretrained is None) == (self.qformer is None):
            raise ValueError("BLIP-2 needs exactly one of `pretrained` (a BLIP-2 checkpoint's "
                             "Q-Former) and `qformer` (a random one's sizes)")
        if self.mode not in MODES:
            raise ValueError(f"BLIP-2 mode must be one of {MODES}, got {self.mode!r}")
        if self.n_frames < 1:
            raise ValueError("n_frames must be >= 1")
        if self.llm_input not in LLM_INPUTS:
            raise ValueError(f"llm_input must be one of {LLM_INPUTS}, got {self.llm_input!r}")
        if self.instruction_aware and self.pretrained is not None:
            raise ValueError("instruction_aware needs a random Q-Former (`qformer:`): a released "
                             "BLIP-2 Q-Former has no text branch trained to read the prompt")

    def architecture(self) -> dict:
        """What a trained model's weights depend on (decoding settings excluded)."""
        return {"pretrained": self.pretrained, "qformer": self.qformer, "ln_vision": self.ln_vision,
                "standardize_features": self.standardize_features,
                "instruction_aware": self.instruction_aware}


# -- frames: which frames represent a video (the media stage's, re-exported for the model code)
from tiktalk.media.image_views import frame_indices, frame_seed, select_frames  # noqa: E402,F401


# -- parts -----------------------------------------------------------------------------------
def build_qformer(cfg: Blip2Config, encoder_width: int) -> tuple[nn.Module, nn.Parameter]:
    """(``Blip2QFormerModel``, query tokens (1, Q, H)): from the checkpoint, or random (seeded by
    the caller's global torch seed)."""
    from transformers import Blip2QFormerConfig, Blip2QFormerModel

    if cfg.pretrained is not None:
        return load_pretrained_qformer(cfg.pretrained, encoder_width)
    if cfg.instruction_aware and "query_length" not in inspect.signature(Blip2QFormerModel.forward).parameters:
        import transformers
        raise ValueError(f"instruction_aware needs a Blip2QFormerModel with a text branch (`query_length`, "
                         f"`use_qformer_text_input`); transformers {transformers.__version__} has none")
    q = cfg.qformer
    conf = Blip2QFormerConfig(hidden_size=q.hidden_size, num_hidden_layers=q.num_layers,
                              num_attention_heads=q.num_heads, intermediate_size=q.intermediate_size,
                              cross_attention_frequency=q.cross_attention_freq,
                              encoder_hidden_size=encoder_width, hidden_dropout_prob=q.dropout,
                              attention_probs_dropout_prob=q.attention_dropout,
                              # the text branch's feed-forward layers (instruction-aware prompts)
                              use_qformer_text_input=cfg.instruction_aware)
    qformer = Blip2QFormerModel(conf)
    queries = nn.Parameter(torch.zeros(1, q.num_queries, q.hidden_size))
    nn.init.normal_(queries, std=conf.initializer_range)
    return qformer, queries


def load_pretrained_qformer(src: PretrainedQFormer, encoder_width: int) -> tuple[nn.Module, nn.Parameter]:
    """The Q-Former and query tokens of a BLIP-2 checkpoint through transformers' own classes;
    only its ``qformer.*`` and ``query_tokens`` tensors are read."""
    from transformers import AutoConfig, Blip2QFormerModel

    from tiktalk.media.image_encoder import read_checkpoint_tensors

    conf = AutoConfig.from_pretrained(src.name_or_path, revision=src.revision)
    qconf = getattr(conf, "qformer_config", None)
    if qconf is None:
        raise ValueError(f"{src.name_or_path}: not a BLIP-2 checkpoint (no qformer_config)")
    if qconf.encoder_hidden_size != encoder_width:
        raise ValueError(f"{src.name_or_path}: its Q-Former reads {qconf.encoder_hidden_size}-d image "
                         f"tokens, the image features are {encoder_width}-d (same checkpoint's vision "
                         f"model in media.image_encoder?)")
    tensors = read_checkpoint_tensors(src.name_or_path, src.revision, ("qformer.", "query_tokens"))
    if "query_tokens" not in tensors:
        raise ValueError(f"{src.name_or_path}: no query_tokens tensor")
    qformer = Blip2QFormerModel(qconf)
    state = {k[len("qformer."):]: v for k, v in tensors.items() if k.startswith("qformer.")}
    missing, unexpected = qformer.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{src.name_or_path}: Q-Former weights do not fit Blip2QFormerModel: "
                         f"missing {missing[:5]}, unexpected {unexpected[:5]}")
    queries = nn.Parameter(tensors["query_tokens"].float().clone())
    log.info("Q-Former and %d query tokens from %s%s", queries.shape[1], src.name_or_path,
             f"@{src.revision}" if src.revision else "")
    return qformer.float(), queries


def resolve_llm_input(mode: str, llm: nn.Module) -> str:
    if mode != "auto":
        return mode
    return "inputs_embeds" if llm_loading.is_native(llm) else "placeholders"


def freeze_llm(llm: nn.Module, checkpointing: bool) -> None:
    """No gradient for any LLM weight; under activation checkpointing every dropout is 0 (the
    LLM then stays in training mode, where transformers checkpoints)."""
    for p in llm.parameters():
        p.requires_grad_(False)
    if checkpointing:
        llm_loading.enable_activation_checkpointing(llm)
        for m in llm.modules():
            if isinstance(m, nn.Dropout):
                m.p = 0.0
            if isinstance(getattr(m, "attention_dropout", None), float):
                m.attention_dropout = 0.0
        if isinstance(getattr(llm.config, "attention_dropout", None), float):
            llm.config.attention_dropout = 0.0


# -- the model -------------------------------------------------------------------------------
class Blip2Dialogue(TrainableStateDict, nn.Module):
    """batch (training): ``image_embeds`` (B, T, D), optional ``image_mask`` (B, T) bool,
    ``input_ids`` / ``attention_mask`` / ``labels`` (B, L) right-padded prompt+response."""

    STATE_BUFFERS = ("feature_norm",)

    def __init__(self, cfg: Blip2Config, llm: nn.Module, encoder_width: int, image_token_id: int | None = None,
                 pass_attention_mask: bool = True, checkpointing: bool = False):
        super().__init__()
        self.cfg = cfg
        self.ln_vision = nn.LayerNorm(encoder_width) if cfg.ln_vision else nn.Identity()
        self.feature_norm = FeatureStandardizer(encoder_width) if cfg.standardize_features else None
        self.qformer, self.query_tokens = build_qformer(cfg, encoder_width)
        llm_hidden = llm.get_input_embeddings().embedding_dim
        self.llm_proj = nn.Linear(self.query_tokens.shape[-1], llm_hidden)
        # instruction-aware: the prompt's LLM input embeddings into the Q-Former's width
        self.text_proj = nn.Linear(llm_hidden, self.query_tokens.shape[-1]) if cfg.instruction_aware else None
        self.llm = llm
        self.llm_input = resolve_llm_input(cfg.llm_input, llm)
        self.pass_attention_mask = pass_attention_mask
        self.checkpointing = checkpointing
        freeze_llm(llm, checkpointing)
        self.injector = None
        if self.llm_input == "placeholders":
            if image_token_id is None:
                raise ValueError("llm_input placeholders needs an image_token_id")
            self.injector = EmbeddingInjector(llm.get_input_embeddings(), image_token_id)
        self.train(False)

    @property
    def num_queries(self) -> int:
        return int(self.query_tokens.shape[1])

    def train(self, mode: bool = True):
        super().train(mode)
        self.llm.train(mode and self.checkpointing)
        return self

    def query_embeds(self, image_embeds: torch.Tensor, image_mask: torch.Tensor | None = None,
                     prompt_ids: torch.Tensor | None = None, prompt_mask: torch.Tensor | None = None
                     ) -> torch.Tensor:
        """(B, Q, llm_hidden) projected query outputs for (B, T, D) image tokens; an
        instruction-aware model also reads each row's prompt: ``prompt_ids`` (B, P) LLM token
        ids and ``prompt_mask`` (B, P), true on the prompt's tokens (padding and, in a training
        batch, the response excluded)."""
        x = image_embeds.to(self.llm_proj.weight.dtype)
        if self.feature_norm is not None:
            x = self.feature_norm(x)
        x = self.ln_vision(x)
        b = x.shape[0]
        mask = None if image_mask is None else image_mask.long()
        queries = self.query_tokens.expand(b, -1, -1)
        if self.text_proj is None:
            out = self.qformer(query_embeds=queries, encoder_hidden_states=x, encoder_attention_mask=mask)
            return self.llm_proj(out[0])
        if prompt_ids is None or prompt_mask is None:
            raise ValueError("an instruction-aware BLIP-2 needs prompt_ids and prompt_mask")
        nq = queries.shape[1]
        text = self.text_proj(self._text_embeds(prompt_ids).to(self.text_proj.weight.dtype))
        self_mask = torch.cat([torch.ones(b, nq, dtype=torch.long, device=x.device), prompt_mask.long()], 1)
        out = self.qformer(query_embeds=torch.cat([queries, text], 1), query_length=nq,
                           attention_mask=self_mask, encoder_hidden_states=x, encoder_attention_mask=mask)
        return self.llm_proj(out[0][:, :nq])

    def _text_embeds(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.llm.get_input_embeddings()(input_ids)

    def _run_llm(self, batch: dict, with_labels: bool):
        """The LLM's output over ``[queries][text]`` (placeholders or embeddings), and Q."""
        ids, mask = batch["input_ids"], batch["attention_mask"]
        prompt_mask = mask.bool() & (batch["labels"] == IGNORE) if "labels" in batch else mask.bool()
        q = self.query_embeds(batch["image_embeds"], batch.get("image_mask"), ids, prompt_mask)
        b, nq = q.shape[0], q.shape[1]
        labels = None
        if with_labels:
            labels = torch.cat([torch.full((b, nq), IGNORE, dtype=torch.long, device=ids.device),
                                batch["labels"]], dim=1)
        mask = torch.cat([torch.ones(b, nq, dtype=mask.dtype, device=ids.device), mask], dim=1)
        if self.llm_input == "inputs_embeds":
            text = self._text_embeds(ids)
            embeds = torch.cat([q.to(text.dtype), text], dim=1)
            return self.llm(inputs_embeds=embeds, attention_mask=mask, labels=labels), nq
        ids = torch.cat([torch.full((b, nq), self.injector.token_id, dtype=ids.dtype, device=ids.device), ids], 1)
        positions = torch.arange(nq, device=ids.device).expand(b, -1)
        kwargs = {"attention_mask": mask} if self.pass_attention_mask else {}
        with self.injector.inject(q, positions):
            return self.llm(input_ids=ids, labels=labels, **kwargs), nq

    def forward(self, batch: dict) -> torch.Tensor:
        return self._run_llm(batch, with_labels=True)[0].loss

    def text_logits(self, batch: dict) -> torch.Tensor:
        """(B, L, vocab) logits at the text positions of a training-style batch."""
        out, nq = self._run_llm(batch, with_labels=False)
        return out.logits[:, nq:]

    def text_logprob_sums(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(summed log p, number of tokens) of each row's labelled tokens, teacher-forced after
        its queries and prompt exactly as in training (the ranking evaluation), with the LLM's
        output layer applied at the labelled positions only
        (:func:`tiktalk.models.scoring.lm_logprob_sums`)."""
        from tiktalk.models.scoring import lm_logprob_sums

        nq = self.num_queries
        return lm_logprob_sums(self.llm, lambda: self._run_llm(batch, with_labels=False)[0],
                               batch["labels"], offset=nq)

    @torch.no_grad()
    def generate(self, image_embeds: torch.Tensor, image_mask: torch.Tensor | None,
                 prompts: Sequence[Sequence[int]], pad_id: int, eos_id: int,
                 pad_fn: Callable[[list[list[int]]], dict] | None = None) -> list[list[int]]:
        """Beam-search one response per prompt (token ids incl. special tokens).

        Rows are LEFT-padded so every row continues from its own last prompt token.
        ``inputs_embeds``: each row is ``[pad ...][queries][prompt]`` as embeddings.
        ``placeholders``: each row is ``[placeholders][prompt]`` as ids, padded by ``pad_fn``
        (the LLM tokenizer's own ``pad``: ChatGLM-6B's builds its 4-D mask and position ids).
        """
        prompt_ids = prompt_mask = None
        if self.text_proj is not None:      # the Q-Former reads the prompt (padding masked out)
            enc = _left_pad(pad_id)(prompts)
            prompt_ids = enc["input_ids"].to(image_embeds.device)
            prompt_mask = enc["attention_mask"].to(image_embeds.device)
        q = self.query_embeds(image_embeds, image_mask, prompt_ids, prompt_mask)
        cfg = self.cfg
        gen = dict(num_beams=cfg.num_beams, max_new_tokens=cfg.max_new_tokens, do_sample=False,
                   length_penalty=cfg.length_penalty, repetition_penalty=cfg.repetition_penalty,
                   eos_token_id=eos_id, pad_token_id=pad_id)
        if self.llm_input == "inputs_embeds":
            inputs = self._embeds_prompt(q, prompts, pad_id)
            width = inputs["input_ids"].shape[1]
            rows = self.llm.generate(**inputs, **gen)[:, width:].tolist()
        else:
            nq = q.shape[1]
            rows_ids = [[self.injector.token_id] * nq + list(p) for p in prompts]
            enc = (pad_fn or _left_pad(pad_id))(rows_ids)
            enc = {k: v.to(q.device) for k, v in enc.items()}
            width = enc["input_ids"].shape[1]
            starts = torch.tensor([width - len(r) for r in rows_ids], device=q.device)
            positions = starts[:, None] + torch.arange(nq, device=q.device)
            with self.injector.inject(q, positions):
                rows = self.llm.generate(**enc, **gen)[:, width:].tolist()
        result = []
        for row in rows:
            toks = []
            for t in row:
                if t in (eos_id, pad_id):
                    break
                toks.append(t)
            result.append(toks)
        return result

    def _embeds_prompt(self, q: torch.Tensor, prompts, pad_id: int) -> dict:
        device = q.device
        b, nq, h = q.shape
        lmax = max(len(p) for p in prompts)
        ids = torch.full((b, lmax), pad_id, dtype=torch.long, device=device)
        for i, p in enumerate(prompts):
            ids[i, lmax - len(p):] = torch.tensor(list(p), dtype=torch.long, device=device)
        text = self._text_embeds(ids)
        embeds = torch.zeros(b, nq + lmax, h, dtype=text.dtype, device=device)
        mask = torch.zeros(b, nq + lmax, dtype=torch.long, device=device)
        for i, p in enumerate(prompts):
            start = lmax - len(p)
            embeds[i, start:start + nq] = q[i].to(text.dtype)
            embeds[i, start + nq:] = text[i, start:]
            mask[i, start:] = 1
        # ids beside the embeddings (the queries' positions hold pad ids): generate embeds the
        # prompt from inputs_embeds, then continues from ids, and returns prompt + new tokens in
        # every transformers version (with inputs_embeds alone, 4.33 prepends a BOS and
        # length-normalises beams over the new tokens only)
        full = torch.cat([torch.full((b, nq), pad_id, dtype=torch.long, device=device), ids], dim=1)
        return {"input_ids": full, "inputs_embeds": embeds, "attention_mask": mask}


def _left_pad(pad_id: int):
    def pad(rows: list[list[int]]) -> dict:
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, width - len(r):] = torch.tensor(r, dtype=torch.long)
            mask[i, width - len(r):] = 1
        return {"input_ids": ids, "attention_mask": mask}
    return pad
