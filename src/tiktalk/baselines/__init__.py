"""Baselines of Table 3: one adapter module per model family.

Every family module exposes two functions with the same signature, called by the
``train_baseline`` / ``predict_baseline`` rules through :func:`get_family`::

    train(params: dict, inputs: BaselineInputs, out_dir: Path) -> None
        Train the model described by ``params`` (the baseline's config block) and write the
        final model to ``out_dir`` (``out_dir/model.pt`` + what it needs to reload),
        checkpointing to ``out_dir/checkpoints/`` every epoch and resuming from there.

    predict(params: dict, model_dir: Path, inputs: BaselineInputs, split: str,
            out_path: Path) -> None
        Decode one response per dialogue of ``split`` and write the predictions file
        (``{"dialogue_id", "response"}`` per line, same order as the dialogue table).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

# family name (the ``family:`` key of a baseline's config) -> module under tiktalk.baselines
FAMILIES = {
    "maria": "tiktalk.baselines.maria",
    "dialogpt": "tiktalk.baselines.dialogpt",
    "causal_lm": "tiktalk.baselines.causal_lm",
    "livebot": "tiktalk.baselines.livebot",
    "blip2": "tiktalk.baselines.blip2",
}


@dataclass
class BaselineInputs:
    """Paths a baseline reads; built by the workflow scripts from Snakemake's inputs."""

    dialogues: dict[str, Path]                      # split -> results/data/{split}.jsonl
    features: list[Path] = field(default_factory=list)   # results/media/*.features.npz
    knowledge: dict[str, Path] = field(default_factory=dict)  # split -> knowledge jsonl
    tokenizer: Path | str | None = None             # trained tokenizer dir or a hub name
    extra_features: list[Path] = field(default_factory=list)  # e.g. BLIP-2 image-encoder shards
    seed: int = 0


def get_family(name: str) -> ModuleType:
    try:
        module = FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown baseline family {name!r}; known: {sorted(FAMILIES)}") from None
    return importlib.import_module(module)
