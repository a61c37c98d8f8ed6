"""Per-dialogue statistics and the bootstrap (tiktalk.metrics.statistics, .bootstrap): the
statistics reproduce the real pycocoevalcap scorers and the METEOR jar exactly, on the whole
set and on resamples; intervals, paired comparisons, Holm."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from tiktalk import cli
from tiktalk.formats import METRIC_KEYS
from tiktalk.io import write_jsonl
from tiktalk.metrics.bootstrap import (
    BootstrapSettings, compare, holm, interval, read_replicates, replicates_of, resample_indices,
    two_sided_p, write_replicates)
from tiktalk.metrics.evaluate import _checked, check_statistics, evaluate, evaluate_files
from tiktalk.metrics.scorers import METEOR_STATS
from tiktalk.metrics.statistics import (
    corpus_scores, corpus_stats, meteor_addable, meteor_from_totals, point_scores, read_stats,
    write_stats)
from tiktalk.settings import SettingsError

from test_metrics import meteor  # noqa: F401  (one METEOR JVM for this module)

CHARS = "你好我们今天天气真的很好看哈笑死了吃火锅狗可爱红色圆圈声音"
PROTOCOLS = ("per-reference", "all-references")


def corpus(n=40, seed=1, n_refs=5):
    """Random Chinese dialogues: an empty hypothesis, a hypothesis equal to its first reference
    (METEOR's one-chunk rule), hypotheses of 1 to 14 characters."""
    rng = random.Random(seed)

    def sent(lo, hi):
        return "".join(rng.choice(CHARS) for _ in range(rng.randint(lo, hi)))

    ids = [f"d{i:03d}" for i in range(n)]
    refs = [{"dialogue_id": d, "references": [sent(1, 14) for _ in range(n_refs)]} for d in ids]
    preds = [{"dialogue_id": d, "response": sent(1, 14)} for d in ids]
    preds[0]["response"] = ""
    preds[1]["response"] = refs[1]["references"][0]
    preds[2]["response"] = "今天 天气\n真好"          # whitespace is not a token
    return preds, refs


def resampled(preds, refs, idx):
    """The corpus of the dialogues ``idx`` (repeats renamed), to score with the scorers."""
    p = [{"dialogue_id": f"r{j}", "response": preds[i]["response"]} for j, i in enumerate(idx)]
    r = [{"dialogue_id": f"r{j}", "references": refs[i]["references"]} for j, i in enumerate(idx)]
    return p, r


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_statistics_give_the_scorers_corpus_scores_exactly(meteor, protocol):
    """The unresampled aggregate equals evaluate() (pycocoevalcap's Bleu, Rouge, Cider, the
    METEOR 1.5 jar, Dist-n) bit for bit, for every metric."""
    preds, refs = corpus()
    want = evaluate(preds, refs, protocol, meteor=meteor)
    stats = corpus_stats(_checked(preds, refs, protocol), meteor, protocol)
    got = point_scores(stats)
    assert set(got) == set(METRIC_KEYS)
    assert {k: got[k] for k in METRIC_KEYS} == {k: want[k] for k in METRIC_KEYS}
    assert check_statistics(stats, want) == 0.0


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_resample_scores_as_the_scorers_score_it(meteor, protocol):
    """A resample with repeated dialogues: BLEU, METEOR, ROUGE-L and Dist-n equal the scorers
    run on that resampled corpus, exactly. CIDEr-D keeps the full set's IDF (a re-run would
    recompute it from the resample), so it is the mean of the full set's sentence scores."""
    preds, refs = corpus(n=25, seed=2)
    stats = corpus_stats(_checked(preds, refs, protocol), meteor, protocol)
    idx = resample_indices(stats.n, 3, seed=5)
    got = corpus_scores(stats, idx)
    for b, row in enumerate(idx):
        assert len(set(row)) < len(row)          # the resample repeats dialogues
        want = evaluate(*resampled(preds, refs, row), protocol, meteor=meteor)
        for key in METRIC_KEYS:
            if key != "cider":
                assert got[key][b] == want[key], (key, b)
        slots = range(stats.n_slots)
        cider = sum(float(np.mean(stats.cider[row, s])) for s in slots) / len(slots)
        assert got["cider"][b] == pytest.approx(100 * cider, rel=1e-12)


def test_meteor_aggregate_is_the_jars(meteor):
    """meteor_from_totals on summed segment statistics equals the jar's EVAL of the segments,
    segment by segment and for the corpus, with paraphrase/stem stages and one-chunk segments."""
    rng = random.Random(0)
    rows = []
    for _ in range(400):
        tl, rl = rng.randint(1, 30), rng.randint(1, 30)
        m = rng.randint(0, min(tl, rl))
        stages = [0.0] * 16
        for _ in range(m):
            stages[rng.choice([0, 2, 4, 8, 12])] += 1     # content/function, every stage
        for i in range(4):
            stages[4 * i + 1], stages[4 * i + 3] = stages[4 * i], stages[4 * i + 2]
        fw = stages[2] + stages[6] + stages[10] + stages[14]
        chunks = rng.randint(1, m) if m else 0
        rows.append([float(tl), float(rl), fw, fw, *stages, float(chunks), float(m), float(m)])
    rows += [[4.0, 4.0, 0.0, 0.0, 4.0, 4.0] + [0.0] * 14 + [1.0, 4.0, 4.0]] * 3   # whole matches
    assert all(len(r) == METEOR_STATS for r in rows)
    proc = meteor.meteor.meteor_p
    proc.stdin.write(("EVAL ||| " + " ||| ".join(" ".join(map(repr, r)) for r in rows) + "\n").encode())
    proc.stdin.flush()
    segments = [float(proc.stdout.readline()) for _ in rows]
    total = float(proc.stdout.readline())
    assert [meteor_from_totals(r) for r in rows] == segments
    assert meteor_from_totals(list(meteor_addable(np.array(rows)).sum(axis=0))) == total
    # without the one-chunk rule the corpus score would differ
    assert meteor_from_totals(list(np.array(rows).sum(axis=0))) != total


def test_statistics_file_round_trip(tmp_path):
    preds, refs = corpus(n=12)
    stats = corpus_stats(_checked(preds, refs, "per-reference"), None, "per-reference")
    write_stats(tmp_path / "s.npz", stats)
    back = read_stats(tmp_path / "s.npz")
    assert back.ids == stats.ids and back.hypotheses == stats.hypotheses and back.meteor is None
    assert point_scores(back) == point_scores(stats)
    assert "meteor" not in point_scores(back)
    write_stats(tmp_path / "again.npz", stats)                 # the same bytes every time
    assert (tmp_path / "again.npz").read_bytes() == (tmp_path / "s.npz").read_bytes()
    np.savez(tmp_path / "old.npz", version=np.int64(0))
    with pytest.raises(ValueError, match="old.npz.*version"):
        read_stats(tmp_path / "old.npz")


def test_check_statistics_names_a_drifting_metric():
    preds, refs = corpus(n=10)
    stats = corpus_stats(_checked(preds, refs, "per-reference"), None, "per-reference")
    metrics = evaluate(preds, refs, use_meteor=False)
    assert check_statistics(stats, metrics) == 0.0
    with pytest.raises(ValueError, match="bleu_2"):
        check_statistics(stats, {**metrics, "bleu_2": metrics["bleu_2"] + 1e-6}, where="x")


def test_evaluate_files_writes_statistics_and_intervals(tmp_path):
    preds, refs = corpus(n=30)
    write_jsonl(tmp_path / "p.jsonl", preds)
    write_jsonl(tmp_path / "r.jsonl", refs)
    m = evaluate_files(tmp_path / "p.jsonl", tmp_path / "r.jsonl", tmp_path / "m.json",
                       use_meteor=False, stats_path=tmp_path / "m.npz", bootstrap=200)
    assert point_scores(read_stats(tmp_path / "m.npz")) == {
        k: m[k] for k in METRIC_KEYS if k != "meteor"}
    assert set(m["intervals"]) == set(METRIC_KEYS) - {"meteor"}
    assert all(lo <= hi for lo, hi in m["intervals"].values())
    assert m["bootstrap"] == {"resamples": 200, "seed": 0, "level": 0.95}
    again = json.loads((tmp_path / "m.json").read_text())
    assert again["intervals"] == m["intervals"]          # seeded: the same resamples


def test_cli_bootstrap(tmp_path, capsys):
    preds, refs = corpus(n=30)
    write_jsonl(tmp_path / "p.jsonl", preds)
    write_jsonl(tmp_path / "r.jsonl", refs)
    args = ["evaluate", "--predictions", str(tmp_path / "p.jsonl"), "--references",
            str(tmp_path / "r.jsonl"), "--no-meteor", "--bootstrap", "300"]
    assert cli.main(args + ["--out", str(tmp_path / "a.json")]) == 0
    printed = capsys.readouterr().out
    assert "95% interval (300 resamples)" in printed
    a = json.loads((tmp_path / "a.json").read_text())
    assert f"[{a['intervals']['rouge_l'][0]:.2f}, {a['intervals']['rouge_l'][1]:.2f}]" in printed
    assert cli.main(args + ["--out", str(tmp_path / "b.json"), "--bootstrap-seed", "1"]) == 0
    b = json.loads((tmp_path / "b.json").read_text())
    assert {k: a[k] for k in METRIC_KEYS if k in a} == {k: b[k] for k in METRIC_KEYS if k in b}
    assert a["intervals"] != b["intervals"]              # other resamples, same scores
    with pytest.raises(SystemExit):
        cli.main(args[:-2] + ["--bootstrap", "-1", "--out", str(tmp_path / "c.json")])


# ------------------------------------------------------------------ the statistics of a difference


def test_holm_equals_statsmodels():
    multipletests = pytest.importorskip("statsmodels.stats.multitest").multipletests
    rng = np.random.default_rng(0)
    for m in (1, 2, 7, 40):
        p = rng.uniform(0, 0.2, size=m) ** 2
        assert holm(p) == pytest.approx(list(multipletests(p, method="holm")[1]), abs=1e-15)
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_compare_and_interval():
    rng = np.random.default_rng(1)
    a = rng.normal(10, 1, size=2000)
    b = a - 0.5 + rng.normal(0, 0.1, size=2000)        # a beats b by 0.5, sd 0.1
    c = compare(10.0, 9.5, a, b)
    assert c.difference == 0.5 and c.low < 0.5 < c.high
    assert c.low == pytest.approx(0.5 - 1.96 * 0.1, abs=0.03)
    assert c.p < 1e-6                                    # z = 5: beyond 1 / resamples
    assert compare(1.0, 1.0, a, a).p == 1.0              # a row against itself
    assert two_sided_p(0.0, np.zeros(5)) == 1.0 and two_sided_p(1.0, np.ones(5)) == 0.0
    assert two_sided_p(1.96, rng.normal(0, 1, 200000)) == pytest.approx(0.05, abs=0.002)
    assert interval(np.arange(101), 0.9) == pytest.approx((5.0, 95.0))
    with pytest.raises(ValueError):
        compare(1, 1, a, b[:5])


def test_replicates_pair_the_runs(tmp_path):
    """Every run on one resample matrix: a run against a copy of itself differs by 0 on every
    resample; runs on other dialogues are an error naming the file."""
    preds, refs = corpus(n=20)
    stats = corpus_stats(_checked(preds, refs, "per-reference"), None, "per-reference")
    p2, r2 = corpus(n=20, seed=9)
    for row in p2 + r2:
        row["dialogue_id"] = "x" + row["dialogue_id"]
    other = corpus_stats(_checked(p2, r2, "per-reference"), None, "per-reference")
    for name, st in (("a", stats), ("b", stats), ("c", other)):
        write_stats(tmp_path / f"{name}.npz", st)
    rep = write_replicates({r: tmp_path / f"{r}.npz" for r in "ab"}, tmp_path / "rep.npz", 50, 3)
    back = read_replicates(tmp_path / "rep.npz")
    assert back.runs == ("a", "b") and back.resamples == 50 and back.seed == 3
    assert np.array_equal(back.values("a", "bleu_2"), back.values("b", "bleu_2"))
    assert back.point("a", "rouge_l") == point_scores(stats)["rouge_l"]
    assert np.isnan(back.point("a", "meteor"))           # not scored: NaN, never 0
    assert np.array_equal(rep.replicates, back.replicates, equal_nan=True)
    with pytest.raises(KeyError, match="run 'z'"):
        back.values("z", "bleu_2")
    with pytest.raises(ValueError, match="c.npz.*differ"):
        write_replicates({"a": tmp_path / "a.npz", "c": tmp_path / "c.npz"}, tmp_path / "x.npz", 5)


def test_bootstrap_settings():
    assert BootstrapSettings.from_config({}) == BootstrapSettings(1000, 0, 0.95)
    assert BootstrapSettings.from_config({"bootstrap": {"resamples": 50}}).resamples == 50
    with pytest.raises(SettingsError, match="resample"):
        BootstrapSettings.from_config({"bootstrap": {"resampels": 50}})
    with pytest.raises(SettingsError, match="level"):
        BootstrapSettings.from_config({"bootstrap": {"level": 1.5}})
