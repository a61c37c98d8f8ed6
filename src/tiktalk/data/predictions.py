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

from tiktalk.io import jsonl_problems, read_jsonl, write_jsonl


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


def _check_prediction(row: dict, seen: dict) -> str | None:
    did, response = row.get("dialogue_id"), row.get("response")
    if not isinstance(did, str) or not did:
        return f"no dialogue_id string in {sorted(row)}"
    if not isinstance(response, str):
        return f"dialogue {did!r}: no response string"
    if did in seen:
        return f"dialogue {did!r} again (first on line {seen[did]})"
    seen[did] = len(seen) + 1
    return None


def predictions_problems(path: str | os.PathLike, limit: int = 5) -> list[str]:
    """``path:line: problem`` for the first bad lines of a predictions file (a row brought by
    the config, family ``external``): each line one JSON object with a non-empty string
    ``dialogue_id`` (each once) and a string ``response``. Whether its ids are the split's
    dialogues is checked when it is scored (:func:`tiktalk.metrics.evaluate.align`)."""
    return jsonl_problems(path, _check_prediction, limit)


def copy_predictions(src: str | os.PathLike, out: str | os.PathLike) -> int:
    """The rows of a predictions file brought by the config, checked, written to ``out`` in the
    pipeline's own form (``dialogue_id`` and ``response`` only); their count."""
    problems = predictions_problems(src)
    if problems:
        raise ValueError("\n".join(problems))
    return write_jsonl(out, ({"dialogue_id": r["dialogue_id"], "response": r["response"]}
                             for r in read_jsonl(src)))
