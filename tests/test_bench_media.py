"""bench/bench_media.py (issue 12, "a benchmark you can trust"): the variants are interleaved
over rounds in a rotated order, and the ratios are taken per round against that round's bare
decode, with medians and their spread."""

from __future__ import annotations

import pytest

from bench_modules import load_bench


@pytest.fixture(scope="module")
def bench():
    return load_bench("bench_media")


def test_rounds_interleave_the_variants_in_a_rotated_order(bench, monkeypatch):
    calls = []
    variants = {name: (lambda path, name=name: calls.append((name, path))) for name in "abc"}
    monkeypatch.setattr(bench, "VARIANTS", variants)
    times = bench.run_rounds(["v0", "v1"], rounds=4)
    assert {k: len(v) for k, v in times.items()} == {"a": 4, "b": 4, "c": 4}
    rounds = [calls[i:i + 3] for i in range(0, 12, 3)]
    assert [[n for n, _ in r] for r in rounds] == [list("abc"), list("bca"), list("cab"), list("abc")]
    assert [{p for _, p in r} for r in rounds] == [{"v0"}, {"v1"}, {"v0"}, {"v1"}]


def test_report_gives_medians_spread_and_per_round_ratios(bench, monkeypatch):
    monkeypatch.setattr(bench, "BASE", "bare")
    # per round the other variant costs 2x, 1x, 1x the bare decode: median ratio 1.00, min-max
    # 1.00-2.00; IQR by inclusive quartiles ([2, 2, 10]: 2 and 6)
    lines = bench.report({"bare": [1.0, 2.0, 10.0], "other": [2.0, 2.0, 10.0]})
    assert lines[2:] == [
        "| bare | 2.00 | 1.50-6.00 | 1.00 (1.00-1.00) |",
        "| other | 2.00 | 2.00-6.00 | 1.00 (1.00-2.00) |",
    ]


def test_a_spread_needs_two_rounds(bench, capsys):
    with pytest.raises(SystemExit):
        bench.main(["--rounds", "1"])
    assert "--rounds must be >= 2" in capsys.readouterr().err
