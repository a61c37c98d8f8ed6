"""Fleiss' kappa: agreement among a fixed number of raters on nominal categories.

Fleiss, J. L. (1971). Measuring nominal scale agreement among many raters. Psychological
Bulletin 76(5), 378-382. For N subjects, k categories and n raters per subject, with n_ij the
number of raters who put subject i in category j::

    P_i  = (sum_j n_ij^2 - n) / (n (n - 1))        agreement on subject i
    p_j  = sum_i n_ij / (N n)                       share of all ratings in category j
    P    = mean_i P_i,   P_e = sum_j p_j^2
    kappa = (P - P_e) / (1 - P_e)

Every subject must have the same number of raters n >= 2 (the raters need not be the same
people). Kappa is undefined when P_e = 1, i.e. when every rating falls in one category: there
is then no disagreement that chance could explain, and :class:`KappaUndefined` says so instead
of returning NaN.

Layer: imports nothing from the package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Mapping, Sequence


class KappaUndefined(ValueError):
    """Kappa cannot be computed for this table; ``str(exc)`` says why."""


@dataclass(frozen=True)
class Kappa:
    """A kappa value with what it was computed from (JSON-ready via :meth:`as_dict`)."""

    kappa: float | None          # None when undefined
    n_subjects: int
    n_raters: int                # raters per subject
    observed: float | None       # P (mean per-subject agreement)
    expected: float | None       # P_e (chance agreement)
    undefined_reason: str = ""

    def as_dict(self) -> dict:
        out = {"kappa": self.kappa, "n_subjects": self.n_subjects, "n_raters": self.n_raters,
               "observed_agreement": self.observed, "expected_agreement": self.expected}
        if self.undefined_reason:
            out["undefined_reason"] = self.undefined_reason
        return out


def _agreement(rows: list[list[int]], names: list) -> tuple[int, float, float]:
    """Validate a count table; return (raters per subject n, P, P_e)."""
    if not rows:
        raise ValueError("Fleiss' kappa: no subjects")
    if len(names) != len(rows):
        raise ValueError(f"Fleiss' kappa: {len(names)} subject names for {len(rows)} rows")
    k = len(rows[0])
    if k < 1:
        raise ValueError("Fleiss' kappa: no categories")
    n = None
    for name, row in zip(names, rows):
        if len(row) != k:
            raise ValueError(f"Fleiss' kappa: subject {name!r} has {len(row)} category counts, "
                             f"expected {k}")
        if any((not isinstance(c, int)) or isinstance(c, bool) or c < 0 for c in row):
            raise ValueError(f"Fleiss' kappa: subject {name!r} has a count that is not a "
                             f"non-negative integer: {row}")
        total = sum(row)
        if n is None:
            n = total
        elif total != n:
            raise ValueError(f"Fleiss' kappa: subject {name!r} has {total} ratings, but subject "
                             f"{names[0]!r} has {n}; every subject needs the same number of raters")
    if n < 2:
        raise KappaUndefined(f"Fleiss' kappa needs at least 2 raters per subject, got {n}")
    n_subjects = len(rows)
    p_bar = sum((sum(c * c for c in row) - n) / (n * (n - 1)) for row in rows) / n_subjects
    p_j = [sum(row[j] for row in rows) / (n_subjects * n) for j in range(k)]
    return n, p_bar, sum(p * p for p in p_j)


def fleiss_kappa(counts: Sequence[Sequence[int]], subjects: Sequence[Hashable] | None = None) -> float:
    """Fleiss' kappa of a subjects x categories count table (see the module doc).

    ``subjects`` names the rows in error messages (default: their 0-based index). Raises
    ValueError for an empty table, a negative count, or a subject whose number of ratings
    differs from the first subject's (naming that subject); :class:`KappaUndefined` when fewer
    than two raters per subject or when every rating is in one category.
    """
    rows = [list(r) for r in counts]
    names = list(subjects) if subjects is not None else list(range(len(rows)))
    n, p_bar, p_e = _agreement(rows, names)
    if p_e >= 1.0 - 1e-12:
        only = next(j for j, c in enumerate(rows[0]) if c > 0)
        raise KappaUndefined(
            f"Fleiss' kappa is undefined: all {len(rows) * n} ratings are in one category "
            f"(column {only}), so chance agreement is 1 and kappa is 0/0")
    return (p_bar - p_e) / (1.0 - p_e)


def count_table(ratings: Mapping[Hashable, Sequence[Hashable]], categories: Sequence[Hashable]
                ) -> tuple[list[Hashable], list[list[int]]]:
    """``{subject: [rating, ...]}`` -> (subjects, subjects x categories counts).

    A rating that is not one of ``categories`` raises ValueError naming the subject.
    """
    index = {c: j for j, c in enumerate(categories)}
    if len(index) != len(categories):
        raise ValueError(f"categories are not distinct: {list(categories)}")
    subjects, table = [], []
    for subject, values in ratings.items():
        row = [0] * len(categories)
        for v in values:
            if v not in index:
                raise ValueError(f"subject {subject!r}: rating {v!r} is not a category "
                                 f"({list(categories)})")
            row[index[v]] += 1
        subjects.append(subject)
        table.append(row)
    return subjects, table


def kappa_of(ratings: Mapping[Hashable, Sequence[Hashable]], categories: Sequence[Hashable]) -> Kappa:
    """Fleiss' kappa of ``{subject: [one rating per rater]}`` as a :class:`Kappa`.

    Undefined cases (see :func:`fleiss_kappa`; also no subjects at all) give ``kappa=None``
    with the reason; unequal
    rater counts and unknown categories still raise ValueError naming the subject.
    """
    subjects, table = count_table(ratings, categories)
    if not table:
        return Kappa(None, 0, 0, None, None, "Fleiss' kappa is undefined: no subjects")
    n_raters = sum(table[0])
    try:
        value = fleiss_kappa(table, subjects)
    except KappaUndefined as exc:
        return Kappa(None, len(subjects), n_raters, None, None, str(exc))
    _, observed, expected = _agreement(table, subjects)
    return Kappa(value, len(subjects), n_raters, observed, expected)
