"""One ranking job: a baseline ranks the shared candidate sets of a split (Recall@K, Mean Rank).

The family's ``score_candidates(params, model_dir, inputs, split, candidates, batch_size=)``
returns the summed log-likelihood and the token count of every candidate (each a
(dialogues, candidates) array, in the candidate file's order); the ranking score (``mean``:
length-normalised, or ``sum``) and the metrics come from :mod:`tiktalk.metrics.ranking`.
Families without a scorer are not ranked (a descriptor with ``scores=False``, :mod:`tiktalk.families.family`).

Output (``results/ranking/{baseline}/{split}.json``)::

    {"metrics": {recall_at_1, recall_at_5, recall_at_10, mean_rank, mean_best_rank, n,
                 n_candidates, score, split},
     "chance": {the same metrics for a model that scores every candidate alike},
     "dialogues": [{"dialogue_id", "reference_ranks": [...], "best_rank"}, ...]}
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from tiktalk.baselines.inputs import BaselineInputs
from tiktalk.families.registry import get_family
from tiktalk.io import write_json
from tiktalk.metrics.ranking import ranking_result, read_candidates

log = logging.getLogger(__name__)


def rank_split(family: str, params: dict, model_dir: str | os.PathLike, inputs: BaselineInputs,
               split: str, candidates_path: str | os.PathLike, out_path: str | os.PathLike,
               score: str = "mean", batch_size: int = 64) -> dict:
    """Score the candidates with the family's scorer and write the ranking file; its metrics."""
    candidates = read_candidates(candidates_path, split)
    module = get_family(family)
    scorer = getattr(module, "score_candidates", None)
    if scorer is None:
        raise ValueError(f"baseline family {family!r} cannot score a given response (no "
                         f"score_candidates); it is not ranked")
    loglik, n_tokens = scorer(params, Path(model_dir), inputs, split, candidates, batch_size=batch_size)
    result = ranking_result(candidates, loglik, n_tokens, score, split)
    write_json(out_path, result)
    metrics = result["metrics"]
    log.info("%s on %s: %s", family, split, {k: round(v, 2) if isinstance(v, float) else v
                                            for k, v in metrics.items()})
    return metrics
