"""Q-Former (BLIP-2, Li et al. 2023): learned queries that read frozen image features.

Structure follows LAVIS ``blip2_models/Qformer.py`` as BLIP-2 uses it for generation
(stage 2: the queries only, no text branch):

* ``num_queries`` learned query embeddings (32 in BLIP-2), passed through the embedding
  LayerNorm + dropout (LAVIS ``BertEmbeddings`` with ``query_embeds``);
* BERT layers (post-norm): self-attention over the queries, then -- on every
  ``cross_attention_freq``-th layer, starting with layer 0 -- cross-attention from the queries
  to the image features (keys/values projected from ``encoder_width``), then the FFN.

Module names mirror BERT's (``layer.{i}.attention.self.query`` ...) so that
:func:`init_from_bert` can copy a pre-trained BERT's self-attention and FFN weights, as
BLIP-2 initialises its Q-Former from BERT-base; cross-attention and queries start random.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn


@dataclass
class QFormerConfig:
    num_queries: int = 32
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    cross_attention_freq: int = 2
    encoder_width: int = 1408          # EVA ViT-g/14 feature width
    dropout: float = 0.1
    attention_dropout: float = 0.1
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02

    @classmethod
    def from_dict(cls, d: dict | None) -> "QFormerConfig":
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown Q-Former config keys {unknown}; known: {sorted(known)}")
        cfg = cls(**d)
        if cfg.hidden_size % cfg.num_heads:
            raise ValueError(f"hidden_size {cfg.hidden_size} not divisible by num_heads {cfg.num_heads}")
        if cfg.cross_attention_freq < 1:
            raise ValueError("cross_attention_freq must be >= 1")
        return cfg

    def to_dict(self) -> dict:
        return asdict(self)


class _Attention(nn.Module):
    """BERT self-attention (``query/key/value``); keys/values may come from another width."""

    def __init__(self, cfg: QFormerConfig, kv_width: int):
        super().__init__()
        self.num_heads = cfg.num_heads
        self.head_dim = cfg.hidden_size // cfg.num_heads
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(kv_width, cfg.hidden_size)
        self.value = nn.Linear(kv_width, cfg.hidden_size)
        self.dropout = nn.Dropout(cfg.attention_dropout)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, hidden: torch.Tensor, kv: torch.Tensor, kv_mask: torch.Tensor | None) -> torch.Tensor:
        q, k, v = self._split(self.query(hidden)), self._split(self.key(kv)), self._split(self.value(kv))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)
        if kv_mask is not None:
            scores = scores.masked_fill(~kv_mask[:, None, None, :].bool(), torch.finfo(scores.dtype).min)
        probs = self.dropout(scores.softmax(dim=-1))
        out = (probs @ v).transpose(1, 2).reshape(hidden.shape)
        return out


class _SelfOutput(nn.Module):
    def __init__(self, cfg: QFormerConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class _AttentionBlock(nn.Module):
    def __init__(self, cfg: QFormerConfig, kv_width: int):
        super().__init__()
        self.self = _Attention(cfg, kv_width)
        self.output = _SelfOutput(cfg)

    def forward(self, hidden, kv, kv_mask=None):
        return self.output(self.self(hidden, kv, kv_mask), hidden)


class _Intermediate(nn.Module):
    def __init__(self, cfg: QFormerConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.act = nn.GELU()

    def forward(self, x):
        return self.act(self.dense(x))


class _Output(nn.Module):
    def __init__(self, cfg: QFormerConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.intermediate_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x, residual):
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class QFormerLayer(nn.Module):
    def __init__(self, cfg: QFormerConfig, has_cross_attention: bool):
        super().__init__()
        self.attention = _AttentionBlock(cfg, cfg.hidden_size)
        self.has_cross_attention = has_cross_attention
        if has_cross_attention:
            self.crossattention = _AttentionBlock(cfg, cfg.encoder_width)
        self.intermediate = _Intermediate(cfg)
        self.output = _Output(cfg)

    def forward(self, hidden, image_embeds, image_mask=None):
        hidden = self.attention(hidden, hidden)
        if self.has_cross_attention:
            hidden = self.crossattention(hidden, image_embeds, image_mask)
        return self.output(self.intermediate(hidden), hidden)


class QFormer(nn.Module):
    """``forward(image_embeds (B, T, encoder_width), image_mask (B, T) or None) -> (B, Q, H)``."""

    def __init__(self, cfg: QFormerConfig):
        super().__init__()
        self.cfg = cfg
        self.query_tokens = nn.Parameter(torch.zeros(1, cfg.num_queries, cfg.hidden_size))
        self.layernorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.dropout)
        self.layer = nn.ModuleList(
            QFormerLayer(cfg, has_cross_attention=(i % cfg.cross_attention_freq == 0))
            for i in range(cfg.num_layers)
        )
        self.apply(self._init_weights)
        nn.init.normal_(self.query_tokens, mean=0.0, std=cfg.initializer_range)

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=self.cfg.initializer_range)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    @property
    def cross_attention_layers(self) -> list[int]:
        return [i for i, layer in enumerate(self.layer) if layer.has_cross_attention]

    def forward(self, image_embeds: torch.Tensor, image_mask: torch.Tensor | None = None) -> torch.Tensor:
        if image_embeds.dim() != 3 or image_embeds.shape[-1] != self.cfg.encoder_width:
            raise ValueError(
                f"image_embeds must be (B, T, {self.cfg.encoder_width}), got {tuple(image_embeds.shape)}"
            )
        b = image_embeds.shape[0]
        hidden = self.dropout(self.layernorm(self.query_tokens.expand(b, -1, -1)))
        for layer in self.layer:
            hidden = layer(hidden, image_embeds, image_mask)
        return hidden


def init_from_bert(qformer: QFormer, bert_state_dict: dict[str, torch.Tensor]) -> list[str]:
    """Copy a BERT's embedding LayerNorm, self-attention and FFN weights into ``qformer``.

    ``bert_state_dict`` is a ``BertModel`` (or ``BertForMaskedLM``: a ``bert.`` prefix is
    stripped) state dict with the same hidden size. Returns the Q-Former parameter names that
    were NOT initialised from BERT (queries, cross-attention, extra layers).
    """
    sd = {}
    for key, value in bert_state_dict.items():
        if key.startswith("bert."):
            key = key[len("bert."):]
        if key.startswith("embeddings.LayerNorm."):
            sd["layernorm." + key[len("embeddings.LayerNorm."):]] = value
        elif key.startswith("encoder.layer."):
            sd["layer." + key[len("encoder.layer."):]] = value
    own = qformer.state_dict()
    loaded = {}
    for key, value in sd.items():
        if key in own:
            if own[key].shape != value.shape:
                raise ValueError(f"BERT weight {key} has shape {tuple(value.shape)}, Q-Former expects {tuple(own[key].shape)}")
            loaded[key] = value
    qformer.load_state_dict(loaded, strict=False)
    return sorted(set(own) - set(loaded))
