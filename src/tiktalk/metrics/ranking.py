"""Ranking evaluation (Livebot's protocol, TikTalk's Recall@K and Mean Rank): candidate sets and
the maths on a model's candidate scores.

Candidate sets (:func:`build_candidates`, one shared file per split, :data:`CANDIDATES_VERSION`)
    Each dialogue of the split gets ``n_candidates`` candidates (100): its references (5) and
    ``n_candidates - n_references`` distractors drawn without replacement from the DISTINCT
    reference texts of the split's other dialogues, leaving out any text equal to one of the
    dialogue's own references (a distractor that is word for word a correct answer would be
    counted wrong). Draws and the final order are seeded per dialogue with
    ``sha256(f"{seed}:{dialogue_id}")``, so a dialogue's set does not depend on the order of the
    table nor on the other dialogues' draws; the references sit at seeded positions (never all
    first), and the file names them by index. Every baseline ranks the same file.

    File (JSON)::

        {"version": 1, "split": "test", "seed": 13, "n_candidates": 100,
         "dialogues": [{"dialogue_id": str, "candidates": [str, ...],
                        "references": [int, ...]}, ...]}      # indices into candidates

Scores
    A model scores every candidate by its log-likelihood given the dialogue (the sum over the
    candidate's tokens, end token included, and the number of tokens: :func:`candidate_scores`
    makes the ranking score, ``mean`` = length-normalised, the sum divided by the tokens, or
    ``sum``). Higher is better.

    Candidate scores file (:func:`read_candidate_scores`; a row of family ``external`` brings
    one, the ranking jobs compute the same arrays): one line per dialogue of the candidate
    file, ``{"dialogue_id": str, "loglik": [float, ...], "n_tokens": [int, ...]}``, a value
    per candidate in the candidate file's order (``n_tokens`` optional: 1 each, so ``mean``
    equals ``sum``).

Metrics (:func:`ranking_metrics`); ties between candidates are broken uniformly at random and
every number is its EXPECTATION under that tie-breaking, so a model that scores every
candidate alike gets exactly the chance values, not a lucky order:

* ``recall_at_k``: the share of the dialogue's references among the top K candidates, averaged
  over dialogues, x100. With 5 references, Recall@1 is at most 20 (one slot); chance is
  ``100 * K / n_candidates``.
* ``mean_rank``: the rank (1 = best) of each reference, averaged over the references and then
  over dialogues: Livebot's MR, the headline. Chance: ``(n_candidates + 1) / 2``.
* ``mean_best_rank``: the rank of the best-ranked reference, averaged over dialogues.
"""

from __future__ import annotations

import hashlib
import os
import random
from typing import Iterable, Mapping, Sequence

import numpy as np

from tiktalk.io import jsonl_problems, read_json, read_jsonl, write_json

CANDIDATES_VERSION = 1
DEFAULT_KS = (1, 5, 10)
SCORE_KINDS = ("mean", "sum")


def _rng(seed: int, dialogue_id: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}:{dialogue_id}".encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "little"))


def build_candidates(rows: Sequence[Mapping], n_candidates: int = 100, seed: int = 0) -> list[dict]:
    """The candidate set of every dialogue of ``rows`` (dialogue-table rows with their
    references in ``responses``); see the module docstring. Raises ValueError, naming the
    dialogue, when too few distinct other responses exist to draw its distractors."""
    if not rows:
        raise ValueError("no dialogues to build candidate sets for")
    texts = sorted({text for row in rows for text in row["responses"]})
    out = []
    for row in rows:
        did = row["dialogue_id"]
        refs = list(row["responses"])
        if len(set(refs)) != len(refs):
            raise ValueError(f"dialogue {did}: its references repeat a text; ranking needs "
                             f"distinct references")
        n_distract = n_candidates - len(refs)
        if n_distract < 0:
            raise ValueError(f"dialogue {did}: {len(refs)} references > n_candidates {n_candidates}")
        own = set(refs)
        pool = [t for t in texts if t not in own]
        if len(pool) < n_distract:
            raise ValueError(f"dialogue {did}: only {len(pool)} distinct responses of other "
                             f"dialogues differ from its references; {n_distract} distractors "
                             f"needed for {n_candidates} candidates (lower ranking.n_candidates)")
        rng = _rng(seed, did)
        candidates = refs + rng.sample(pool, n_distract)
        order = list(range(n_candidates))
        rng.shuffle(order)
        shuffled = [candidates[i] for i in order]
        ref_positions = sorted(order.index(i) for i in range(len(refs)))
        out.append({"dialogue_id": did, "candidates": shuffled, "references": ref_positions})
    return out


def write_candidates(path: str | os.PathLike, sets: list[dict], split: str, seed: int,
                     n_candidates: int) -> None:
    write_json(path, {"version": CANDIDATES_VERSION, "split": split, "seed": int(seed),
                      "n_candidates": int(n_candidates), "dialogues": sets})


def read_candidates(path: str | os.PathLike, split: str | None = None) -> dict:
    """The candidate file, checked (version, split, sizes, reference indices)."""
    obj = read_json(path)
    if not isinstance(obj, dict) or obj.get("version") != CANDIDATES_VERSION:
        got = obj.get("version") if isinstance(obj, dict) else type(obj).__name__
        raise ValueError(f"{path}: not a candidate file of version {CANDIDATES_VERSION} (got {got!r})")
    if split is not None and obj.get("split") != split:
        raise ValueError(f"{path}: candidates of split {obj.get('split')!r}, expected {split!r}")
    n = obj["n_candidates"]
    for i, d in enumerate(obj["dialogues"], 1):
        refs = d.get("references") or []
        if len(d.get("candidates", [])) != n or not refs or \
                any(not isinstance(r, int) or not 0 <= r < n for r in refs):
            raise ValueError(f"{path}: dialogue {i} ({d.get('dialogue_id', '?')}): needs "
                             f"{n} candidates and reference indices in [0, {n})")
    return obj


def candidate_scores(loglik: np.ndarray, n_tokens: np.ndarray, kind: str = "mean") -> np.ndarray:
    """The ranking score from summed log-likelihoods and token counts (same shape)."""
    loglik = np.asarray(loglik, dtype=np.float64)
    n_tokens = np.asarray(n_tokens, dtype=np.float64)
    if loglik.shape != n_tokens.shape:
        raise ValueError(f"log-likelihoods {loglik.shape} and token counts {n_tokens.shape} differ")
    if kind == "sum":
        return loglik
    if kind == "mean":
        if np.any(n_tokens <= 0):
            raise ValueError("a candidate with no scored token cannot be length-normalised")
        return loglik / n_tokens
    raise ValueError(f"ranking score must be one of {SCORE_KINDS}, got {kind!r}")


def reference_ranks(scores: Sequence[float], references: Iterable[int]) -> np.ndarray:
    """Expected rank (1 = best) of each reference under random tie-breaking: a candidate with
    ``g`` strictly better candidates and ``t`` ties (itself included) has rank ``g + (t+1)/2``."""
    s = np.asarray(scores, dtype=np.float64)
    if not np.all(np.isfinite(s)):
        raise ValueError("candidate scores must be finite")
    out = []
    for r in references:
        greater = int(np.sum(s > s[r]))
        tied = int(np.sum(s == s[r]))
        out.append(greater + (tied + 1) / 2.0)
    return np.asarray(out)


def recall_at_k(scores: Sequence[float], references: Sequence[int], k: int) -> float:
    """Expected share of the references among the top ``k`` (ties broken at random)."""
    s = np.asarray(scores, dtype=np.float64)
    hits = 0.0
    for r in references:
        greater = int(np.sum(s > s[r]))
        tied = int(np.sum(s == s[r]))
        hits += min(1.0, max(0.0, (k - greater) / tied))
    return hits / len(references)


def best_rank(scores: Sequence[float], references: Sequence[int]) -> float:
    """Expected rank of the best-ranked reference. With ``m`` references and ``u`` other
    candidates tied at the best reference score, and ``g`` candidates above it, the first of the
    ``m`` among the ``m + u`` tied places is expected at ``(m + u + 1) / (m + 1)``."""
    s = np.asarray(scores, dtype=np.float64)
    refs = set(references)
    top = max(s[r] for r in refs)
    greater = int(np.sum(s > top))
    m = sum(1 for r in refs if s[r] == top)
    u = int(np.sum(s == top)) - m
    return greater + (m + u + 1) / (m + 1)


def ranking_metrics(scores: Sequence[Sequence[float]], references: Sequence[Sequence[int]],
                    ks: Sequence[int] = DEFAULT_KS) -> dict:
    """``{"recall_at_1", ..., "mean_rank", "mean_best_rank", "n", "n_candidates"}`` over
    dialogues (recalls x100); ``scores[i]`` are dialogue i's candidate scores."""
    if len(scores) != len(references) or len(scores) == 0:
        raise ValueError(f"{len(scores)} score rows for {len(references)} dialogues")
    n_cand = len(scores[0])
    recalls = {k: [] for k in ks}
    ranks, bests = [], []
    for i, (row, refs) in enumerate(zip(scores, references)):
        if len(row) != n_cand:
            raise ValueError(f"dialogue {i}: {len(row)} candidate scores, expected {n_cand}")
        for k in ks:
            recalls[k].append(recall_at_k(row, refs, k))
        ranks.append(float(np.mean(reference_ranks(row, refs))))
        bests.append(best_rank(row, refs))
    out = {f"recall_at_{k}": 100.0 * float(np.mean(v)) for k, v in recalls.items()}
    out.update(mean_rank=float(np.mean(ranks)), mean_best_rank=float(np.mean(bests)),
               n=len(scores), n_candidates=n_cand)
    return out


def chance_metrics(n_candidates: int, n_references: int, ks: Sequence[int] = DEFAULT_KS) -> dict:
    """What a model that scores all candidates alike gets (the same expectations)."""
    flat = [0.0] * n_candidates
    return ranking_metrics([flat], [list(range(n_references))], ks)


def ranking_result(candidates: Mapping, loglik, n_tokens, score: str, split: str) -> dict:
    """The ranking file of a model (``results/ranking/{baseline}/{split}.json``): its metrics,
    the chance metrics, the mean token count and each dialogue's reference ranks, from its
    candidate scores (arrays of (dialogues, candidates), the candidate file's order)."""
    dialogues = candidates["dialogues"]
    loglik = np.asarray(loglik, dtype=np.float64)
    if loglik.shape != (len(dialogues), candidates["n_candidates"]):
        raise ValueError(f"candidate scores of shape {loglik.shape}, expected "
                         f"({len(dialogues)}, {candidates['n_candidates']})")
    scores = candidate_scores(loglik, n_tokens, score)
    refs = [d["references"] for d in dialogues]
    metrics = {**ranking_metrics(scores, refs), "score": score, "split": split}
    per_dialogue = [{"dialogue_id": d["dialogue_id"],
                     "reference_ranks": [float(r) for r in reference_ranks(row, d["references"])],
                     "best_rank": float(best_rank(row, d["references"]))}
                    for d, row in zip(dialogues, scores)]
    return {"metrics": metrics, "chance": chance_metrics(candidates["n_candidates"], len(refs[0])),
            "mean_tokens": float(np.mean(n_tokens)), "dialogues": per_dialogue}


def _numbers(value) -> bool:
    return isinstance(value, list) and bool(value) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)


def _check_scores(row: dict, seen: dict) -> str | None:
    did = row.get("dialogue_id")
    if not isinstance(did, str) or not did:
        return f"no dialogue_id string in {sorted(row)}"
    if not _numbers(row.get("loglik")):
        return f"dialogue {did!r}: loglik must be a non-empty list of numbers"
    n = len(row["loglik"])
    if "n_tokens" in row and (not _numbers(row["n_tokens"]) or len(row["n_tokens"]) != n):
        return f"dialogue {did!r}: n_tokens must be a list of {n} numbers, as loglik"
    if seen.setdefault("#n", n) != n:
        return f"dialogue {did!r}: {n} candidate scores, the first line has {seen['#n']}"
    if did in seen:
        return f"dialogue {did!r} again (first on line {seen[did]})"
    seen[did] = len(seen)
    return None


def candidate_scores_problems(path: str | os.PathLike, limit: int = 5) -> list[str]:
    """``path:line: problem`` for the first bad lines of a candidate scores file (see the
    module doc); whether it covers the candidate file is checked when it is read."""
    return jsonl_problems(path, _check_scores, limit)


def read_candidate_scores(path: str | os.PathLike, candidates: Mapping) -> tuple[np.ndarray, np.ndarray]:
    """(loglik, n_tokens), each (dialogues, candidates) in the order of ``candidates`` (the
    candidate file), from a candidate scores file; an error names the file and what is off."""
    problems = candidate_scores_problems(path)
    if problems:
        raise ValueError("\n".join(problems))
    rows = {r["dialogue_id"]: r for r in read_jsonl(path)}
    want = [d["dialogue_id"] for d in candidates["dialogues"]]
    missing = [d for d in want if d not in rows]
    extra = sorted(set(rows) - set(want))
    if missing or extra:
        raise ValueError(f"{path}: the scores do not cover the candidate file's dialogues "
                         f"(missing {missing[:3]}, not in it {extra[:3]})")
    n = candidates["n_candidates"]
    if len(rows[want[0]]["loglik"]) != n:
        raise ValueError(f"{path}: {len(rows[want[0]]['loglik'])} scores a dialogue; the "
                         f"candidate file has {n} candidates each")
    loglik = np.array([rows[d]["loglik"] for d in want], dtype=np.float64)
    n_tokens = np.array([rows[d].get("n_tokens", [1] * n) for d in want], dtype=np.float64)
    return loglik, n_tokens
