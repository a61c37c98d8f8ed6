"""The paper's DialoGPT row: GPT2-chitchat (yangjianxin1/GPT2-chitchat), a Chinese GPT-2.

Input layout (GPT2-chitchat ``preprocess.py`` / ``interact.py``)::

    [CLS] u1 [SEP] u2 [SEP] ... un [SEP] response [SEP]

with a BERT-style Chinese vocabulary; the last ``max_history`` context turns are kept
(``max_history_len``). Decoding as in ``interact.py``: [UNK] is never produced, top-k 8
sampling (top-p off, temperature 1, repetition penalty 1.0), at most 25 tokens, stop at [SEP].

GPT2-chitchat trains on every token of the dialogue; here, as specified for TikTalk, only the
response tokens (and the closing [SEP]) carry the loss (``loss_on_context`` switches back).

Real model: 12 layers, 768 hidden, 12 heads, vocab 13317 (the checkpoint's own ``vocab.txt``),
loaded with ``GPT2LMHeadModel.from_pretrained(pretrained)``; the demo builds a tiny
``GPT2Config`` from scratch on the shared WordPiece tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

IGNORE = -100


@dataclass(frozen=True)
class ChitchatConfig:
    """One GPT2-chitchat model and its decoding; immutable (built once with
    :func:`tiktalk.settings.from_mapping` from the baseline's ``model:`` block)."""

    pretrained: str | None = None      # dir / hub name of a GPT2-chitchat checkpoint; None = scratch
    n_layer: int = 12                  # used only when pretrained is None
    n_embd: int = 768
    n_head: int = 12
    n_positions: int = 300             # GPT2-chitchat's n_ctx
    dropout: float = 0.1
    max_history: int = 3
    max_input_len: int = 300           # whole sequence, truncated from the oldest context
    max_response_len: int = 25         # training targets are cut to this many tokens
    loss_on_context: bool = False
    # decoding (interact.py defaults)
    top_k: int = 8
    top_p: float = 0.0
    temperature: float = 1.0
    repetition_penalty: float = 1.0
    max_new_tokens: int = 25


def encode_dialogue(tokenizer, context: Sequence[str], response: str | None, cfg: ChitchatConfig
                    ) -> tuple[list[int], list[int]]:
    """Token ids and labels of one example (``response=None``: the prompt for decoding).

    The prompt is ``[CLS] u_{n-h+1} [SEP] ... u_n [SEP]`` (h = ``max_history``). When the
    whole sequence is longer than ``max_input_len``, the oldest context tokens are dropped
    (the leading [CLS] stays). Labels are -100 on the prompt unless ``loss_on_context``.
    """
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    turns = list(context)[-cfg.max_history:] if cfg.max_history > 0 else []
    ctx: list[int] = []
    for turn in turns:
        ctx.extend(tokenizer.encode(turn, add_special_tokens=False))
        ctx.append(sep_id)
    resp: list[int] = []
    if response is not None:
        resp = tokenizer.encode(response, add_special_tokens=False)[: cfg.max_response_len] + [sep_id]
    budget = cfg.max_input_len - 1 - len(resp)
    if budget < 1:
        raise ValueError(f"max_input_len={cfg.max_input_len} leaves no room for the context")
    ctx = ctx[-budget:]
    input_ids = [cls_id] + ctx + resp
    if cfg.loss_on_context:
        labels = list(input_ids)
    else:
        labels = [IGNORE] * (1 + len(ctx)) + resp
    return input_ids, labels


def build_lm(cfg: ChitchatConfig, tokenizer):
    """The GPT-2 LM: the pre-trained checkpoint, or a fresh one sized by ``cfg``."""
    from transformers import GPT2Config, GPT2LMHeadModel

    if cfg.pretrained:
        lm = GPT2LMHeadModel.from_pretrained(cfg.pretrained)
        if len(tokenizer) > lm.config.vocab_size:
            lm.resize_token_embeddings(len(tokenizer))
        return lm
    conf = GPT2Config(
        vocab_size=len(tokenizer), n_positions=cfg.n_positions, n_embd=cfg.n_embd,
        n_layer=cfg.n_layer, n_head=cfg.n_head, resid_pdrop=cfg.dropout, embd_pdrop=cfg.dropout,
        attn_pdrop=cfg.dropout, bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    return GPT2LMHeadModel(conf)


class ChitchatModel(nn.Module):
    """Wraps the GPT-2 LM; ``forward(batch)`` returns the loss (trainer contract).

    batch: ``input_ids``, ``attention_mask``, ``labels`` (B, L), right-padded.
    """

    def __init__(self, lm, cfg: ChitchatConfig, pad_id: int, sep_id: int, unk_id: int | None):
        super().__init__()
        self.lm = lm
        self.cfg = cfg
        self.pad_id, self.sep_id, self.unk_id = pad_id, sep_id, unk_id

    def forward(self, batch: dict) -> torch.Tensor:
        out = self.lm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                      labels=batch["labels"])
        return out.loss

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 generator_seed: int | None = None, do_sample: bool = True) -> list[list[int]]:
        """Sample one response per LEFT-padded prompt; returns ids without the final [SEP]."""
        if generator_seed is not None:
            torch.manual_seed(generator_seed)
        cfg = self.cfg
        kwargs = dict(do_sample=do_sample, max_new_tokens=cfg.max_new_tokens,
                      eos_token_id=self.sep_id, pad_token_id=self.pad_id,
                      repetition_penalty=cfg.repetition_penalty)
        if do_sample:
            kwargs.update(top_k=cfg.top_k, top_p=(cfg.top_p if cfg.top_p > 0 else 1.0),
                          temperature=cfg.temperature)
        if self.unk_id is not None:
            kwargs["bad_words_ids"] = [[self.unk_id]]
        out = self.lm.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        new = out[:, input_ids.shape[1]:].tolist()
        result = []
        for row in new:
            toks = []
            for t in row:
                if t in (self.sep_id, self.pad_id):
                    break
                toks.append(t)
            result.append(toks)
        return result
