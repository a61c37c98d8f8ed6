"""BLIP-2 for dialogue (paper sec. 4.2, Fig. 3a): frozen image features -> Q-Former ->
fully connected projection -> soft prompt prepended to the frozen LLM's text embeddings.

As in LAVIS ``blip2_opt.py`` / ``blip2_chatglm``-style models: the image features pass a
LayerNorm (``ln_vision``, trainable), the Q-Former's query outputs go through ``llm_proj``
(``nn.Linear(qformer_hidden, llm_hidden)``) and are prepended to the embedded text as
``inputs_embeds``; the LLM is frozen and kept in eval mode; the loss covers the response
tokens only. Only ``ln_vision``, the Q-Former and ``llm_proj`` are trained (and saved).

Frame handling (TikTalk's two settings): BLIP-2_Img feeds the tokens of ONE frame of the
video; BLIP-2_Video feeds the element-wise mean of several frames' tokens (see
:func:`select_frames`).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, fields

import numpy as np
import torch
from torch import nn

from tiktalk.models.features import FeatureStandardizer
from tiktalk.models.qformer import QFormer, QFormerConfig

IGNORE = -100
MODES = ("img", "video")


@dataclass
class Blip2Config:
    qformer: QFormerConfig = field(default_factory=QFormerConfig)
    mode: str = "img"                 # img: one random frame; video: mean of n_frames frames
    n_frames: int = 8                 # video mode: frames averaged (uniformly chosen)
    ln_vision: bool = True
    # per-dimension standardisation of the frozen encoder's features with training-set
    # statistics, before ln_vision (not in BLIP-2; the demo's random ViT gives every video
    # nearly the same vector, the content being a ~4% deviation that LayerNorm keeps tiny)
    standardize_features: bool = False
    qformer_init: str | None = None   # BERT dir/hub name to initialise the Q-Former from
    # prompt building (max_history, max_source_len, max_target_len) is the LLM's own
    num_beams: int = 5
    max_new_tokens: int = 30
    length_penalty: float = 1.0
    repetition_penalty: float = 1.0

    @classmethod
    def from_dict(cls, d: dict | None) -> "Blip2Config":
        d = dict(d or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown BLIP-2 keys {unknown}; known: {sorted(known)}")
        d["qformer"] = QFormerConfig.from_dict(d.get("qformer"))
        cfg = cls(**d)
        if cfg.mode not in MODES:
            raise ValueError(f"BLIP-2 mode must be one of {MODES}, got {cfg.mode!r}")
        if cfg.n_frames < 1:
            raise ValueError("n_frames must be >= 1")
        return cfg

    def to_dict(self) -> dict:
        return asdict(self)


def frame_seed(seed: int, video_id: str) -> int:
    """A per-video seed that is stable across processes (no PYTHONHASHSEED dependence)."""
    h = hashlib.sha256(f"{seed}:{video_id}".encode()).digest()
    return int.from_bytes(h[:8], "little")


def select_frames(frames: np.ndarray, mode: str, n_frames: int, seed: int, video_id: str
                  ) -> np.ndarray | None:
    """The image tokens (T, D) that represent one video, or None when it has no frames.

    ``frames`` is (F, T, D): F frames of T tokens. ``img``: one frame drawn at random with a
    generator seeded by (seed, video_id), so the same frame is used in training and decoding;
    ``video``: the mean over ``n_frames`` uniformly spaced frames (all when F <= n_frames).
    """
    if frames.shape[0] == 0:
        return None
    if mode == "img":
        rng = np.random.default_rng(frame_seed(seed, video_id))
        return frames[int(rng.integers(frames.shape[0]))]
    if mode == "video":
        n = frames.shape[0]
        if n > n_frames:
            idx = np.linspace(0, n - 1, n_frames).round().astype(int)
            frames = frames[idx]
        return frames.mean(axis=0)
    raise ValueError(f"unknown mode {mode!r}")


class Blip2Dialogue(nn.Module):
    """batch (training): ``image_embeds`` (B, T, D), ``image_mask`` (B, T) bool, ``input_ids``
    / ``attention_mask`` / ``labels`` (B, L) right-padded prompt+response."""

    def __init__(self, cfg: Blip2Config, llm):
        super().__init__()
        self.cfg = cfg
        width = cfg.qformer.encoder_width
        self.ln_vision = nn.LayerNorm(width) if cfg.ln_vision else nn.Identity()
        self.feature_norm = FeatureStandardizer(width) if cfg.standardize_features else None
        self.qformer = QFormer(cfg.qformer)
        llm_hidden = llm.get_input_embeddings().embedding_dim
        self.llm_proj = nn.Linear(cfg.qformer.hidden_size, llm_hidden)
        self.llm = llm
        for p in self.llm.parameters():
            p.requires_grad_(False)
        self.llm.eval()

    # the LLM never leaves eval mode (no dropout in the frozen model)
    def train(self, mode: bool = True):
        super().train(mode)
        self.llm.eval()
        return self

    TRAINABLE = ("ln_vision", "qformer", "llm_proj", "feature_norm")  # feature_norm: buffers

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.state_dict().items() if k.split(".", 1)[0] in self.TRAINABLE}

    def load_trainable_state_dict(self, sd: dict[str, torch.Tensor]) -> None:
        own = self.trainable_state_dict()
        missing = sorted(set(own) - set(sd))
        unexpected = sorted(set(sd) - set(own))
        if missing or unexpected:
            raise KeyError(f"BLIP-2 state mismatch: missing {missing[:5]}, unexpected {unexpected[:5]}")
        self.load_state_dict(sd, strict=False)

    def query_embeds(self, image_embeds: torch.Tensor, image_mask: torch.Tensor | None = None) -> torch.Tensor:
        dtype = self.llm_proj.weight.dtype
        x = image_embeds.to(dtype)
        if self.feature_norm is not None:
            x = self.feature_norm(x)
        q = self.qformer(self.ln_vision(x), image_mask)
        return self.llm_proj(q)

    def _text_embeds(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.llm.get_input_embeddings()(input_ids)

    def forward(self, batch: dict) -> torch.Tensor:
        q = self.query_embeds(batch["image_embeds"], batch.get("image_mask"))
        text = self._text_embeds(batch["input_ids"])
        b, nq = q.shape[0], q.shape[1]
        inputs_embeds = torch.cat([q.to(text.dtype), text], dim=1)
        mask = torch.cat([torch.ones(b, nq, dtype=batch["attention_mask"].dtype, device=q.device),
                          batch["attention_mask"]], dim=1)
        labels = torch.cat([torch.full((b, nq), IGNORE, dtype=torch.long, device=q.device),
                            batch["labels"]], dim=1)
        return self.llm(inputs_embeds=inputs_embeds, attention_mask=mask, labels=labels).loss

    @torch.no_grad()
    def generate(self, image_embeds: torch.Tensor, image_mask: torch.Tensor | None,
                 prompts: list[list[int]], pad_id: int, eos_id: int) -> list[list[int]]:
        """Beam-search one response per prompt (token ids incl. special tokens).

        Each row is ``[pad ...][queries][prompt]`` (padding on the left, so every row ends at
        the same position and generation continues from its own last prompt token).
        """
        device = image_embeds.device
        q = self.query_embeds(image_embeds, image_mask)
        b, nq, h = q.shape
        lmax = max(len(p) for p in prompts)
        ids = torch.full((b, lmax), pad_id, dtype=torch.long, device=device)
        for i, p in enumerate(prompts):
            ids[i, lmax - len(p):] = torch.tensor(p, dtype=torch.long, device=device)
        text = self._text_embeds(ids)
        total = nq + lmax
        inputs_embeds = torch.zeros(b, total, h, dtype=text.dtype, device=device)
        mask = torch.zeros(b, total, dtype=torch.long, device=device)
        for i, p in enumerate(prompts):
            start = lmax - len(p)
            inputs_embeds[i, start:start + nq] = q[i].to(text.dtype)
            inputs_embeds[i, start + nq:] = text[i, start:]
            mask[i, start:] = 1
        cfg = self.cfg
        out = self.llm.generate(
            inputs_embeds=inputs_embeds, attention_mask=mask, num_beams=cfg.num_beams,
            max_new_tokens=cfg.max_new_tokens, length_penalty=cfg.length_penalty,
            repetition_penalty=cfg.repetition_penalty, do_sample=False,
            eos_token_id=eos_id, pad_token_id=pad_id,
        )
        # with inputs_embeds only, decoder-only generate returns just the new tokens
        rows = out.tolist()
        result = []
        for row in rows:
            toks = []
            for t in row:
                if t in (eos_id, pad_id):
                    break
                toks.append(t)
            result.append(toks)
        return result
