"""Dist-n (Li et al. 2016): distinct n-grams / all n-grams over all hypotheses."""

from __future__ import annotations

from typing import Iterable, Sequence


def distinct_n(token_lists: Iterable[Sequence[str]], n: int) -> float:
    """Dist-n in [0, 1] over all hypotheses.

    n-grams are taken inside each hypothesis (never across two), the distinct set and the
    total count over the whole corpus. A corpus with no n-gram at all (e.g. every hypothesis
    shorter than ``n`` tokens) scores 0.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    seen: set[tuple[str, ...]] = set()
    total = 0
    for tokens in token_lists:
        tokens = tuple(tokens)
        for i in range(len(tokens) - n + 1):
            seen.add(tokens[i:i + n])
            total += 1
    return len(seen) / total if total else 0.0
