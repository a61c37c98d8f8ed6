"""Chinese-CLIP (transformers ``ChineseCLIPModel``) for Table 6: which frame of a video is most
similar to a response.

* :func:`decode_clip_frames`: the frames of one video sampled as the media stage samples them
  (:func:`tiktalk.media.decode.decode_video`: up to ``max_frames`` frames at the centres of equal
  time bins, one sequential pass), resized so the short side is the model's image size and
  centre-cropped to a square (the CLIP processor's resize + centre crop), with their times.
* :class:`ClipScorer`: a model directory (``save_pretrained`` of a ``ChineseCLIPModel`` plus its
  BERT tokenizer and, optionally, ``preprocessor_config.json`` with ``image_mean``/``image_std``)
  -> L2-normalised text and image embeddings; the similarity is their dot product.
* :func:`fit_tiny_clip` (the demo): a tiny randomly initialised ``ChineseCLIPModel`` trained
  with CLIP's symmetric contrastive loss on (frame, response) pairs of the demo's training
  videos, saved as such a directory (with a character vocabulary of the texts). Paper runs use
  the released Chinese-CLIP (weights/chinese-clip) instead.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

log = logging.getLogger(__name__)

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def stream_hw(path: Path) -> tuple[int, int] | None:
    import av

    try:
        with av.open(str(path)) as container:
            cc = container.streams.video[0].codec_context
            return (cc.height, cc.width) if cc.width and cc.height else None
    except (av.FFmpegError, IndexError, OSError):
        return None


def centre_crop(frames: np.ndarray, size: int) -> np.ndarray:
    h, w = frames.shape[1:3]
    top, left = (h - size) // 2, (w - size) // 2
    return frames[:, top:top + size, left:left + size]


def decode_clip_frames(path: str | os.PathLike, size: int, max_frames: int,
                       max_duration_s: float = 600.0) -> tuple[np.ndarray, np.ndarray, float]:
    """(frames uint8 (n, size, size, 3), times (n,) s, duration s) of one video."""
    from tiktalk.media.decode import decode_video

    path = Path(path)
    hw = stream_hw(path) or (size, size)
    scale = size / min(hw)
    out_hw = (max(size, round(hw[0] * scale)), max(size, round(hw[1] * scale)))
    decoded = decode_video(path, max_frames=max_frames, frame_size=out_hw, audio=False,
                           max_duration_s=max_duration_s)
    duration = decoded.duration or (float(decoded.frame_times[-1]) if len(decoded.frame_times) else 0.0)
    return centre_crop(decoded.frames, size), np.asarray(decoded.frame_times, dtype=np.float64), \
        min(float(duration), max_duration_s)


def _features(out):
    """Projected features from a ``get_*_features`` result (a tensor, or transformers 5's
    output object with the projection in ``pooler_output``)."""
    return getattr(out, "pooler_output", out)


class ClipScorer:
    """Text and image embeddings of a Chinese-CLIP directory (L2-normalised)."""

    def __init__(self, model_dir: str | os.PathLike, device: str = "auto", batch_size: int = 64):
        import torch
        from transformers import BertTokenizer, ChineseCLIPModel

        from tiktalk.runtime import resolve_device

        model_dir = Path(model_dir)
        self.device = resolve_device(device)
        self.model = ChineseCLIPModel.from_pretrained(str(model_dir)).to(self.device).eval()
        self.tokenizer = BertTokenizer.from_pretrained(str(model_dir))
        self.image_size = int(self.model.config.vision_config.image_size)
        mean, std = CLIP_MEAN, CLIP_STD
        pre = model_dir / "preprocessor_config.json"
        if pre.exists():
            import json

            cfg = json.loads(pre.read_text(encoding="utf-8"))
            mean, std = cfg.get("image_mean", mean), cfg.get("image_std", std)
        self._mean = torch.tensor(mean).view(1, 3, 1, 1)
        self._std = torch.tensor(std).view(1, 3, 1, 1)
        self.batch_size = int(batch_size)
        self.max_text_len = int(min(self.model.config.text_config.max_position_embeddings, 52 * 4))

    def pixels(self, frames: np.ndarray):
        import torch

        x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0
        return (x - self._mean) / self._std

    def encode_images(self, frames: np.ndarray) -> np.ndarray:
        import torch

        out = []
        with torch.inference_mode():
            for i in range(0, len(frames), self.batch_size):
                px = self.pixels(frames[i:i + self.batch_size]).to(self.device)
                f = _features(self.model.get_image_features(pixel_values=px))
                out.append(torch.nn.functional.normalize(f.float(), dim=-1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.model.config.projection_dim), np.float32)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), self.batch_size):
                enc = self.tokenizer(list(texts[i:i + self.batch_size]), padding=True, truncation=True,
                                     max_length=self.max_text_len, return_tensors="pt").to(self.device)
                f = _features(self.model.get_text_features(**enc))
                out.append(torch.nn.functional.normalize(f.float(), dim=-1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.model.config.projection_dim), np.float32)


# ------------------------------------------------------------------ the demo's tiny model


@dataclass(frozen=True)
class TinyClipSettings:
    """A tiny ChineseCLIPModel and how it is fitted (config ``paper_tables.interest.demo_clip``)."""

    image_size: int = 32
    patch_size: int = 8
    hidden_size: int = 32
    layers: int = 1
    heads: int = 2
    projection_dim: int = 32
    steps: int = 300
    batch_size: int = 64
    lr: float = 3e-3
    seed: int = 13


def _char_vocab(texts: Sequence[str]) -> list[str]:
    chars = sorted({ch for t in texts for ch in t if not ch.isspace()})
    return list(SPECIALS) + chars


def tiny_clip_model(settings: TinyClipSettings, vocab_size: int):
    import torch
    from transformers import ChineseCLIPConfig, ChineseCLIPModel

    s = settings
    text = {"vocab_size": vocab_size, "hidden_size": s.hidden_size, "num_hidden_layers": s.layers,
            "num_attention_heads": s.heads, "intermediate_size": 2 * s.hidden_size,
            "max_position_embeddings": 64}
    vision = {"image_size": s.image_size, "patch_size": s.patch_size, "hidden_size": s.hidden_size,
              "num_hidden_layers": s.layers, "num_attention_heads": s.heads,
              "intermediate_size": 2 * s.hidden_size, "projection_dim": s.projection_dim}
    torch.manual_seed(s.seed)
    return ChineseCLIPModel(ChineseCLIPConfig(text_config=text, vision_config=vision,
                                              projection_dim=s.projection_dim))


def fit_tiny_clip(frames: Sequence[np.ndarray], texts: Sequence[str], out_dir: str | os.PathLike,
                  settings: TinyClipSettings | Mapping | None = None,
                  positives: Sequence[np.ndarray] | None = None) -> dict:
    """Fit a tiny ChineseCLIPModel on (frame, text) pairs and save it with its tokenizer.

    ``frames[i]``: (n_i, S, S, 3) uint8 frames of video i (S = ``image_size``), described by
    ``texts[i]``; ``positives[i]`` (bool (n_i,), default all) marks the frames the text is about.
    Each step draws (seeded) ``batch_size`` positive frames and as many other frames; CLIP's
    symmetric contrastive loss: a text must pick its positive frames among all the batch's
    frames (the other frames of its own video included), a positive frame its text among the
    batch's texts. Returns ``{"steps", "final_loss", "positives", "negatives"}``."""
    import torch
    from transformers import BertTokenizer

    from tiktalk.settings import from_mapping

    s = settings if isinstance(settings, TinyClipSettings) else from_mapping(
        TinyClipSettings, settings, "paper_tables.interest.demo_clip")
    if len(frames) != len(texts) or not texts:
        raise ValueError(f"fit_tiny_clip: {len(frames)} frame sets for {len(texts)} texts")
    if positives is None:
        positives = [np.ones(len(f), dtype=bool) for f in frames]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab = out / "vocab.txt"
    vocab.write_text("\n".join(_char_vocab(texts)) + "\n", encoding="utf-8")
    tok = BertTokenizer(str(vocab), do_lower_case=False, tokenize_chinese_chars=True)
    model = tiny_clip_model(s, len(tok))
    pos = [(i, j) for i, m in enumerate(positives) for j in np.flatnonzero(m)]
    neg = [(i, j) for i, m in enumerate(positives) for j in np.flatnonzero(~np.asarray(m, bool))]
    if not pos:
        raise ValueError("fit_tiny_clip: no positive frames")
    enc = tok(list(texts), padding=True, truncation=True, max_length=64, return_tensors="pt")
    mean, std = torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    gen = torch.Generator().manual_seed(s.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=0.0)
    model.train()
    value = float("nan")
    for step in range(s.steps):
        b = min(s.batch_size, len(pos))
        p_pick = [pos[k] for k in torch.randint(len(pos), (b,), generator=gen).tolist()]
        n_pick = [neg[k] for k in torch.randint(len(neg), (b,), generator=gen).tolist()] if neg else []
        shown = p_pick + n_pick
        imgs = np.stack([frames[i][j] for i, j in shown])
        px = (torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255.0 - mean) / std
        img = torch.nn.functional.normalize(_features(model.get_image_features(pixel_values=px)), dim=-1)
        idx = torch.tensor([i for i, _ in p_pick])
        txt = torch.nn.functional.normalize(_features(model.get_text_features(
            input_ids=enc["input_ids"][idx], attention_mask=enc["attention_mask"][idx],
            token_type_ids=enc["token_type_ids"][idx])), dim=-1)
        logits = model.logit_scale.exp() * txt @ img.T                    # (b texts, 2b frames)
        same = torch.tensor([[texts[a] == texts[i] for i, _ in p_pick] for a, _ in p_pick],
                            dtype=torch.float32)                           # positives share a text
        target = torch.cat([same, torch.zeros(b, len(n_pick))], dim=1)
        t2i = torch.sum(-target / target.sum(1, keepdim=True) * torch.log_softmax(logits, 1), 1).mean()
        i2t = torch.sum(-same / same.sum(1, keepdim=True) * torch.log_softmax(logits[:, :b].T, 1), 1).mean()
        loss = 0.5 * (t2i + i2t)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        value = float(loss.detach())
        if step % 50 == 0 or step == s.steps - 1:
            log.info("tiny Chinese-CLIP step %d/%d: loss %.4f", step + 1, s.steps, value)
    model.eval()
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return {"steps": s.steps, "final_loss": value, "positives": len(pos), "negatives": len(neg)}
