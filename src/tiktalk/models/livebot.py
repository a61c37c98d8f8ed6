"""Livebot (Ma et al., AAAI 2019; lancopku/livebot ``codes/modules.py``, ``transformer.py``).

Three transformer stacks, pre-norm residual blocks as in the original
(``x + dropout(sublayer(norm(x)))``, final LayerNorm per stack):

* video encoder: self-attention + FFN over the frame features;
* text encoder: self-attention over the context tokens, attention to the video, FFN;
* comment decoder: masked self-attention, attention to the video, attention to the text, FFN;
  a linear output layer over the vocabulary.

Token embeddings (shared by context and comment) get sinusoidal positions; frames get none
(the original feeds the raw ResNet features straight into the video encoder). Paper defaults:
hidden 512, FFN 2048, 8 heads, 6 blocks, dropout 0.1, greedy decoding of 20 tokens.

Differences from the original, all needed for TikTalk: a linear projection of the frame
features (TikTalk's are 2048-d ResNet-101, Livebot's were 512-d ResNet-18, fed unprojected);
key-padding masks for frames and context (the original attends to padding); the loss is the
mean over non-pad target tokens (the original averages over pad positions too); torch's
``nn.LayerNorm`` instead of the hand-written one (``std`` with Bessel's correction); Xavier
initialisation of the stacks' matrices (the original keeps torch's defaults), but not of the
token embedding, which keeps the original's N(0, 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class LivebotConfig:
    """One Livebot model; immutable. The adapter builds it once with
    :func:`tiktalk.settings.from_mapping` from the ``model:`` block, the vocabulary and the
    feature dimension."""

    vocab_size: int
    feature_dim: int                  # dimension of the stored frame features
    hidden: int = 512
    ff: int = 2048
    heads: int = 8
    blocks: int = 6
    dropout: float = 0.1
    max_positions: int = 512
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2

    def __post_init__(self) -> None:
        if self.hidden % self.heads:
            raise ValueError(f"hidden {self.hidden} not divisible by heads {self.heads}")


class _MHA(nn.Module):
    def __init__(self, hidden: int, heads: int, dropout: float):
        super().__init__()
        self.attn = nn.MultiheadAttention(hidden, heads, dropout=dropout, batch_first=True)

    def forward(self, q, kv, key_padding_mask=None, attn_mask=None):
        out, _ = self.attn(q, kv, kv, key_padding_mask=key_padding_mask, attn_mask=attn_mask,
                           need_weights=False)
        return out


class _Sublayer(nn.Module):
    """Pre-norm residual connection: ``x + dropout(f(norm(x)))``."""

    def __init__(self, hidden: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(hidden, eps=1e-6)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, fn):
        return x + self.dropout(fn(self.norm(x)))


class _FFN(nn.Module):
    def __init__(self, hidden: int, ff: int, dropout: float):
        super().__init__()
        self.w_1 = nn.Linear(hidden, ff)
        self.w_2 = nn.Linear(ff, hidden)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return self.w_2(self.dropout(F.relu(self.w_1(x))))


class VideoBlock(nn.Module):
    def __init__(self, c: LivebotConfig):
        super().__init__()
        self.self_attn = _MHA(c.hidden, c.heads, c.dropout)
        self.feed_forward = _FFN(c.hidden, c.ff, c.dropout)
        self.sublayer = nn.ModuleList(_Sublayer(c.hidden, c.dropout) for _ in range(2))

    def forward(self, x, x_pad):
        x = self.sublayer[0](x, lambda h: self.self_attn(h, h, x_pad))
        return self.sublayer[1](x, self.feed_forward)


class TextBlock(nn.Module):
    def __init__(self, c: LivebotConfig):
        super().__init__()
        self.self_attn = _MHA(c.hidden, c.heads, c.dropout)
        self.video_attn = _MHA(c.hidden, c.heads, c.dropout)
        self.feed_forward = _FFN(c.hidden, c.ff, c.dropout)
        self.sublayer = nn.ModuleList(_Sublayer(c.hidden, c.dropout) for _ in range(3))

    def forward(self, x, x_pad, m, m_pad):
        x = self.sublayer[0](x, lambda h: self.self_attn(h, h, x_pad))
        x = self.sublayer[1](x, lambda h: self.video_attn(h, m, m_pad))
        return self.sublayer[2](x, self.feed_forward)


class DecoderBlock(nn.Module):
    def __init__(self, c: LivebotConfig):
        super().__init__()
        self.self_attn = _MHA(c.hidden, c.heads, c.dropout)
        self.video_attn = _MHA(c.hidden, c.heads, c.dropout)
        self.text_attn = _MHA(c.hidden, c.heads, c.dropout)
        self.feed_forward = _FFN(c.hidden, c.ff, c.dropout)
        self.sublayer = nn.ModuleList(_Sublayer(c.hidden, c.dropout) for _ in range(4))

    def forward(self, y, causal, m1, m1_pad, m2, m2_pad):
        y = self.sublayer[0](y, lambda h: self.self_attn(h, h, None, causal))
        y = self.sublayer[1](y, lambda h: self.video_attn(h, m1, m1_pad))
        y = self.sublayer[2](y, lambda h: self.text_attn(h, m2, m2_pad))
        return self.sublayer[3](y, self.feed_forward)


def sinusoidal_positions(n: int, d: int) -> torch.Tensor:
    pe = torch.zeros(n, d)
    position = torch.arange(0, n, dtype=torch.float32).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * -(math.log(10000.0) / d))
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term[: d // 2])
    return pe


class Livebot(nn.Module):
    """Batch keys: ``frames`` (B, F, feature_dim) float, ``frame_mask`` (B, F) bool (True =
    real frame), ``context`` (B, Lc) long, ``target`` (B, Ly) long = ``[BOS] y [EOS] pad...``.
    ``forward(batch)`` returns the mean token cross-entropy (the trainer's contract)."""

    def __init__(self, cfg: LivebotConfig):
        super().__init__()
        self.cfg = cfg
        self.frame_proj = nn.Linear(cfg.feature_dim, cfg.hidden)
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.hidden)
        self.register_buffer("pe", sinusoidal_positions(cfg.max_positions, cfg.hidden), persistent=False)
        self.emb_dropout = nn.Dropout(cfg.dropout)
        self.video_layers = nn.ModuleList(VideoBlock(cfg) for _ in range(cfg.blocks))
        self.video_norm = nn.LayerNorm(cfg.hidden, eps=1e-6)
        self.text_layers = nn.ModuleList(TextBlock(cfg) for _ in range(cfg.blocks))
        self.text_norm = nn.LayerNorm(cfg.hidden, eps=1e-6)
        self.dec_layers = nn.ModuleList(DecoderBlock(cfg) for _ in range(cfg.blocks))
        self.dec_norm = nn.LayerNorm(cfg.hidden, eps=1e-6)
        self.output_layer = nn.Linear(cfg.hidden, cfg.vocab_size)
        # Xavier for the matrices of the stacks; the token embedding keeps nn.Embedding's
        # N(0, 1), as in lancopku/livebot: at Xavier's scale (std ~ sqrt(2 / (vocab + hidden)),
        # ~0.03 for a 2k vocabulary) the sinusoidal positions (norm ~ sqrt(hidden / 2)) drown
        # the tokens and the model answers every prompt with the same sentence
        for name, p in self.named_parameters():
            if p.dim() > 1 and not name.startswith("embedding."):
                nn.init.xavier_uniform_(p)

    # -- the three stacks ------------------------------------------------------------------
    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        n = ids.shape[1]
        if n > self.cfg.max_positions:
            raise ValueError(f"sequence of {n} tokens exceeds max_positions={self.cfg.max_positions}")
        return self.emb_dropout(self.embedding(ids) + self.pe[:n].to(self.embedding.weight.dtype))

    def encode_video(self, frames: torch.Tensor, frame_mask: torch.Tensor):
        pad = ~frame_mask.bool()
        x = self.frame_proj(frames)
        for layer in self.video_layers:
            x = layer(x, pad)
        return self.video_norm(x), pad

    def encode_text(self, context: torch.Tensor, video, video_pad):
        pad = context.eq(self.cfg.pad_id)
        x = self.embed(context)
        for layer in self.text_layers:
            x = layer(x, pad, video, video_pad)
        return self.text_norm(x), pad

    def encode(self, batch: dict):
        video, video_pad = self.encode_video(batch["frames"], batch["frame_mask"])
        text, text_pad = self.encode_text(batch["context"], video, video_pad)
        return video, video_pad, text, text_pad

    def decode(self, y: torch.Tensor, memory) -> torch.Tensor:
        video, video_pad, text, text_pad = memory
        n = y.shape[1]
        causal = torch.triu(torch.ones(n, n, dtype=torch.bool, device=y.device), diagonal=1)
        h = self.embed(y)
        for layer in self.dec_layers:
            h = layer(h, causal, video, video_pad, text, text_pad)
        return self.output_layer(self.dec_norm(h))

    # -- trainer contract ------------------------------------------------------------------
    def forward(self, batch: dict) -> torch.Tensor:
        target = batch["target"]
        logits = self.decode(target[:, :-1], self.encode(batch))
        gold = target[:, 1:]
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), gold.reshape(-1),
                               ignore_index=self.cfg.pad_id)

    @torch.no_grad()
    def token_nll(self, batch: dict) -> torch.Tensor:
        """Summed negative log-likelihood of each target, (B,): Livebot's ranking score."""
        target = batch["target"]
        logits = self.decode(target[:, :-1], self.encode(batch)).float()
        gold = target[:, 1:]
        nll = F.cross_entropy(logits.transpose(1, 2), gold, ignore_index=self.cfg.pad_id, reduction="none")
        return nll.sum(dim=1)

    @torch.no_grad()
    def generate(self, batch: dict, max_len: int = 20) -> list[list[int]]:
        """Greedy decoding (as in Livebot's ``generate``), stopping each row at ``eos_id``.

        Returns the generated token ids per row, without BOS/EOS.
        """
        memory = self.encode(batch)
        b = batch["context"].shape[0]
        device = batch["context"].device
        ys = torch.full((b, 1), self.cfg.bos_id, dtype=torch.long, device=device)
        done = torch.zeros(b, dtype=torch.bool, device=device)
        for _ in range(max_len):
            logits = self.decode(ys, memory)[:, -1]
            nxt = logits.argmax(dim=-1)
            nxt = torch.where(done, torch.full_like(nxt, self.cfg.pad_id), nxt)
            ys = torch.cat([ys, nxt[:, None]], dim=1)
            done |= nxt.eq(self.cfg.eos_id)
            if bool(done.all()):
                break
        out = []
        for row in ys[:, 1:].tolist():
            toks = []
            for t in row:
                if t in (self.cfg.eos_id, self.cfg.pad_id):
                    break
                toks.append(t)
            out.append(toks)
        return out
