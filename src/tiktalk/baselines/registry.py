"""The baseline families of Table 3 and how the workflow finds one.

Every family module exposes two functions with the same signature, called by the
``train_baseline`` / ``predict`` rules through :func:`get_family`::

    train(params: dict, inputs: BaselineInputs, out_dir: Path) -> None
        Train the model described by ``params`` (the baseline's config block) and write the
        final model to ``out_dir`` (``out_dir/model.pt`` + what it needs to reload),
        checkpointing to ``out_dir/checkpoints/`` every epoch and resuming from there.

    predict(params: dict, model_dir: Path, inputs: BaselineInputs, split: str,
            out_path: Path) -> None
        Decode one response per dialogue of ``split`` and write the predictions file
        (``{"dialogue_id", "response"}`` per line, same order as the dialogue table).

The families share their run-time helpers (:mod:`tiktalk.baselines.common`): the split's
dialogue table, the device, ``model.pt`` with its family and version checked on load, and
writes on rank 0 only. A family's immutable model config is built once, in its module, with
:func:`tiktalk.settings.from_mapping`, so an unknown key fails naming the closest known one.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# family name (the ``family:`` key of a baseline's config) -> module under tiktalk.baselines
FAMILIES = {
    "maria": "tiktalk.baselines.maria",
    "dialogpt": "tiktalk.baselines.dialogpt",
    "causal_lm": "tiktalk.baselines.causal_lm",
    "livebot": "tiktalk.baselines.livebot",
    "blip2": "tiktalk.baselines.blip2",
}
# Families whose module also has ``score_candidates`` (the ranking evaluation,
# :mod:`tiktalk.baselines.ranking`); the DAG makes ranking jobs for these only.
SCORING_FAMILIES = frozenset({"maria", "dialogpt", "causal_lm", "livebot", "blip2"})


def get_family(name: str) -> ModuleType:
    try:
        module = FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown baseline family {name!r}; known: {sorted(FAMILIES)}") from None
    return importlib.import_module(module)
