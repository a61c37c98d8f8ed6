"""Fleiss' kappa against published values and an independent implementation."""

from __future__ import annotations

import random

import pytest

from tiktalk.report.kit.agreement import KappaUndefined, count_table, fleiss_kappa, kappa_of

# Worked example of the Wikipedia article "Fleiss' kappa" (section "Worked example"): 10
# subjects, 14 raters each, 5 categories; the article gives P = 0.378, P_e = 0.213 and
# kappa = 0.210. Its column totals (20, 28, 39, 21, 32) and the 14 ratings per row are checked
# below, so a transcription slip would fail here rather than pass silently.
WIKIPEDIA_TABLE = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]


def test_wikipedia_worked_example():
    assert all(sum(r) == 14 for r in WIKIPEDIA_TABLE)
    assert [sum(col) for col in zip(*WIKIPEDIA_TABLE)] == [20, 28, 39, 21, 32]
    assert round(fleiss_kappa(WIKIPEDIA_TABLE), 3) == 0.210
    ratings = {}
    for i, row in enumerate(WIKIPEDIA_TABLE):
        ratings[f"s{i}"] = [c + 1 for c, count in enumerate(row) for _ in range(count)]
    k = kappa_of(ratings, [1, 2, 3, 4, 5])
    assert round(k.observed, 3) == 0.378 and round(k.expected, 3) == 0.213
    assert k.n_subjects == 10 and k.n_raters == 14


def test_against_statsmodels_on_random_tables():
    inter_rater = pytest.importorskip("statsmodels.stats.inter_rater")
    rng = random.Random(7)
    for trial in range(25):
        n_subjects, n_raters, n_cat = rng.randint(2, 40), rng.randint(2, 9), rng.randint(2, 6)
        # skewed category use, so tables range from near-agreement to noise
        weights = [rng.random() ** 3 + 0.01 for _ in range(n_cat)]
        table = []
        for _ in range(n_subjects):
            row = [0] * n_cat
            for _ in range(n_raters):
                row[rng.choices(range(n_cat), weights)[0]] += 1
            table.append(row)
        if sum(1 for col in zip(*table) if sum(col)) < 2:
            continue  # one category only: undefined, tested below
        assert fleiss_kappa(table) == pytest.approx(inter_rater.fleiss_kappa(table), abs=1e-12), trial


def test_perfect_agreement_is_one_and_chance_is_near_zero():
    assert fleiss_kappa([[3, 0], [0, 3], [3, 0]]) == pytest.approx(1.0)
    # every subject split the same way: observed agreement equals chance, kappa < 0 here
    assert fleiss_kappa([[1, 1], [1, 1]]) == pytest.approx(-1.0)


def test_all_in_one_category_is_undefined_not_nan():
    with pytest.raises(KappaUndefined, match="undefined: all 9 ratings are in one category"):
        fleiss_kappa([[0, 3, 0]] * 3)
    k = kappa_of({"a": [4, 4], "b": [4, 4]}, [1, 2, 3, 4, 5])
    assert k.kappa is None and "one category" in k.undefined_reason
    assert k.as_dict()["kappa"] is None and "undefined_reason" in k.as_dict()


def test_one_rater_and_no_subjects_are_undefined():
    with pytest.raises(KappaUndefined, match="at least 2 raters"):
        fleiss_kappa([[1, 0], [0, 1]])
    assert kappa_of({}, [0, 1]).kappa is None


def test_unequal_rater_counts_name_the_subject():
    with pytest.raises(ValueError, match=r"subject \('i002', 'maria'\) has 2 ratings"):
        kappa_of({("i001", "maria"): [1, 2, 3], ("i002", "maria"): [1, 2]}, [1, 2, 3])
    with pytest.raises(ValueError, match="subject 1 has 4 ratings"):
        fleiss_kappa([[1, 2], [2, 2]])


def test_count_table_rejects_unknown_category():
    with pytest.raises(ValueError, match="subject 'x': rating 9 is not a category"):
        count_table({"x": [1, 9]}, [1, 2, 3])
    subjects, table = count_table({"x": [1, 3, 3], "y": [2, 2, 2]}, [1, 2, 3])
    assert subjects == ["x", "y"] and table == [[1, 0, 2], [0, 3, 0]]
