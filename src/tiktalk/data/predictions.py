"""The predictions table (``results/predictions/{baseline}/{split}.jsonl``): its one writer
and its one reader.

One ``{"dialogue_id": str, "response": str}`` per dialogue of the split, in the dialogue
table's order (:mod:`tiktalk.formats`, "Predictions"). The baselines write it with
:func:`write_predictions`; scoring and the report read it with :func:`read_predictions` (the
alignment with the references, and its error messages, is :func:`tiktalk.metrics.evaluate.align`).

It lives with the other tables keyed by dialogue (below the baselines that write it and the
metrics that read it) and imports only layer 0, so a baseline that writes predictions does not
depend on the scorers, and editing the scorers re-scores only.
"""

from __future__ import annotations

import os
from typing import Sequence

from tiktalk.io import read_jsonl, write_jsonl


def write_predictions(path: str | os.PathLike, dialogues: Sequence[dict],
                      responses: Sequence[str]) -> int:
    """One row per dialogue (rows with a ``dialogue_id``), atomically; the count."""
    if len(dialogues) != len(responses):
        raise ValueError(f"{path}: {len(responses)} predictions for {len(dialogues)} dialogues")
    return write_jsonl(path, ({"dialogue_id": d["dialogue_id"], "response": r}
                              for d, r in zip(dialogues, responses)))


def read_predictions(path: str | os.PathLike) -> list[dict]:
    """The rows of a predictions file (a line that is not a JSON object names file and line)."""
    return read_jsonl(path)
