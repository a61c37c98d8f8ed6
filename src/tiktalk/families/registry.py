"""Every baseline family and how a job finds its code: one module of this package per family.

A family is a module ``tiktalk/families/<name>.py`` holding ``FAMILY = Family(name="<name>",
...)`` (:mod:`tiktalk.families.family`); nothing lists the families, a new module is a new
family. Its code (the descriptor's ``code``, or the descriptor module itself) exposes, called by
the ``train_baseline`` / ``predict`` / ``rank`` rules through :func:`get_family`::

    train(params: dict, inputs: BaselineInputs, out_dir: Path) -> None
        Train the model described by ``params`` (the baseline's config block) and write the
        final model to ``out_dir`` (``out_dir/model.pt`` + what it needs to reload),
        checkpointing to ``out_dir/checkpoints/`` every epoch and resuming from there.

    predict(params: dict, model_dir: Path, inputs: BaselineInputs, split: str,
            out_path: Path) -> None
        Decode one response per dialogue of ``split`` and write the predictions file
        (``{"dialogue_id", "response"}`` per line, same order as the dialogue table).

    score_candidates(params, model_dir, inputs, split, candidates, batch_size=) -> (loglik, n_tokens)
        Only when the descriptor says ``scores=True``: the ranking evaluation
        (:mod:`tiktalk.baselines.ranking`).

The families share their run-time helpers (:mod:`tiktalk.baselines.common`): the split's
dialogue table, the device, ``model.pt`` with its family and version checked on load, and
writes on rank 0 only. A family's immutable model config is built once, in its module, with
:func:`tiktalk.settings.from_mapping`, so an unknown key fails naming the closest known one.

Torch-free: importing the descriptors imports no family code (:func:`get_family` does).
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import lru_cache
from pathlib import Path
from types import ModuleType

from tiktalk.families.family import Family

PACKAGE = "tiktalk.families"
NOT_FAMILIES = frozenset({"family", "registry"})   # the package's own modules


def family_module(name: str) -> str:
    """The descriptor module of family ``name`` (``tiktalk.families.<name>``)."""
    return f"{PACKAGE}.{name}"


@lru_cache(maxsize=1)
def families() -> dict[str, Family]:
    """name -> descriptor of every family, sorted by name."""
    out = {}
    for info in sorted(pkgutil.iter_modules([str(Path(__file__).parent)]), key=lambda i: i.name):
        if info.name in NOT_FAMILIES or info.name.startswith("_"):
            continue
        module = importlib.import_module(family_module(info.name))
        desc = getattr(module, "FAMILY", None)
        if not isinstance(desc, Family):
            raise TypeError(f"{module.__file__}: a family module needs FAMILY = Family(...)")
        if desc.name != info.name:
            raise ValueError(f"{module.__file__}: FAMILY.name is {desc.name!r}; it must be the "
                             f"module's name, {info.name!r}")
        out[desc.name] = desc
    return out


def get(name: str) -> Family:
    """The descriptor of family ``name``; an error naming the known ones."""
    try:
        return families()[name]
    except KeyError:
        raise ValueError(f"unknown baseline family {name!r}; known: {sorted(families())}") from None


def code_module(name: str) -> str:
    """The module with family ``name``'s train/predict (its descriptor's ``code``)."""
    return get(name).code or family_module(name)


def get_family(name: str) -> ModuleType:
    """The imported code module of family ``name``."""
    return importlib.import_module(code_module(name))
