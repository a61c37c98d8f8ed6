"""Padding token-id lists into batches: shared by the text baselines (DialoGPT, the causal LM,
BLIP-2's prompts). Depends on torch and NumPy only."""

from __future__ import annotations

import numpy as np
import torch


def pad_batch(examples: list[dict], pad_values: dict[str, int], mask_from: str | None = None,
              side: str = "right") -> dict[str, torch.Tensor]:
    """Pad the list-valued ``pad_values`` keys of ``examples`` into (B, L) long tensors.

    ``side``: "right" for training, "left" for decoder-only generation. With ``mask_from``,
    an ``attention_mask`` (1 = real token) is built from that key's lengths.
    """
    if side not in ("left", "right"):
        raise ValueError(f"side must be left or right, got {side!r}")
    out: dict[str, torch.Tensor] = {}
    for key, pad in pad_values.items():
        seqs = [np.asarray(ex[key], dtype=np.int64) for ex in examples]   # lists or packed arrays
        width = max((len(s) for s in seqs), default=0)
        t = torch.full((len(seqs), width), pad, dtype=torch.long)
        for i, s in enumerate(seqs):
            if len(s):
                if side == "right":
                    t[i, :len(s)] = torch.from_numpy(s)
                else:
                    t[i, width - len(s):] = torch.from_numpy(s)
        out[key] = t
    if mask_from is not None:
        lens = torch.tensor([len(ex[mask_from]) for ex in examples])
        width = out[mask_from].shape[1]
        pos = torch.arange(width)[None, :]
        if side == "right":
            out["attention_mask"] = (pos < lens[:, None]).long()
        else:
            out["attention_mask"] = (pos >= (width - lens)[:, None]).long()
    return out


def lm_collate(examples: list[dict], pad_id: int) -> dict:
    """Right-pad ``input_ids``/``labels`` (labels with -100) and build the attention mask."""
    return pad_batch(examples, {"input_ids": pad_id, "labels": -100}, mask_from="input_ids")
