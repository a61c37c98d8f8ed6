"""What every baseline family does the same way at run time.

    table(inputs, split) -> list[dict]        # the split's dialogue table (checked)
    load_tokenizer_for(name, inputs)          # the family's ``tokenizer:`` or the pipeline's
    device_for(params)                        # the device of ``params['train']['device']``
    cpu_state(state_dict) -> dict             # tensors detached and on the CPU
    save_model_blob / load_model_blob         # ``model.pt`` with family and version checks
    write_model(out_dir, family, version, config, tokenizer=None, **fields)   # rank 0 only

``model.pt`` (:mod:`tiktalk.formats`, "Model") is ``{"family", "version", "config", ...}``: the
family's immutable model config as a plain mapping plus its weights. Stage files are read and
written by the stage that owns them: dialogue tables by :mod:`tiktalk.data.dialogues`,
knowledge by :mod:`tiktalk.knowledge.flows`, predictions by :mod:`tiktalk.data.predictions`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from tiktalk.data.dialogues import read_dialogues
from tiktalk.io import atomic_path
from tiktalk.models.tokenizer import load_tokenizer
from tiktalk.runtime import is_main_process, resolve_device


def table(inputs, split: str) -> list[dict]:
    """The dialogue table of ``split`` from a BaselineInputs; a missing split names the ones there."""
    if split not in inputs.dialogues:
        raise KeyError(f"no dialogue table for split {split!r} (have {sorted(inputs.dialogues)})")
    return read_dialogues(inputs.dialogues[split], split)


def load_tokenizer_for(name, inputs):
    """The tokenizer ``name`` (a family's own ``tokenizer:``) or else the pipeline's
    (``inputs.tokenizer``: the trained demo vocabulary or the config's hub name)."""
    name = name or getattr(inputs, "tokenizer", None)
    if not name:
        raise ValueError("no tokenizer: set the baseline's `tokenizer:` or pass inputs.tokenizer")
    return load_tokenizer(name)


def device_for(params: dict):
    """The torch device of a baseline's ``train: {device: ...}`` (default ``auto``)."""
    return resolve_device((params.get("train") or {}).get("device") or "auto")


def cpu_state(state_dict) -> dict:
    """A state dict's tensors, detached and on the CPU (what a family's model.pt stores)."""
    return {k: v.detach().cpu() for k, v in state_dict.items()}


def save_model_blob(path, family: str, version: int, config: dict, **fields) -> None:
    """A family's ``model.pt``: ``{"family", "version", "config", **fields}``, written atomically."""
    import torch

    with atomic_path(path) as tmp:
        torch.save({"family": family, "version": version, "config": config, **fields}, tmp)


def load_model_blob(model_dir, family: str, version: int) -> dict:
    """The ``model.pt`` of ``model_dir``; an error naming it unless ``family`` / ``version`` match."""
    import torch

    path = Path(model_dir) / "model.pt"
    blob = torch.load(path, map_location="cpu", weights_only=True)
    if blob.get("family") != family or blob.get("version") != version:
        raise ValueError(f"{path} is not a {family} v{version} model "
                         f"(it says {blob.get('family')!r} v{blob.get('version')!r})")
    return blob


def write_model(out_dir, family: str, version: int, config: dict, tokenizer=None, **fields) -> None:
    """The final files of a training run, on rank 0 only (other ranks return at once):
    ``out_dir/tokenizer/`` (when given, replacing an old one) and ``out_dir/model.pt``."""
    if not is_main_process():
        return
    out_dir = Path(out_dir)
    if tokenizer is not None:
        tok_dir = out_dir / "tokenizer"
        if tok_dir.exists():
            shutil.rmtree(tok_dir)
        tokenizer.save_pretrained(str(tok_dir))
    save_model_blob(out_dir / "model.pt", family, version, config, **fields)
