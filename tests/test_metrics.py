"""Metrics (tiktalk.metrics): hand-derived values, equality with direct pycocoevalcap calls,
validation errors. One METEOR JVM serves the whole module (module-scoped fixture)."""

from __future__ import annotations

import math
import random
import shutil

import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge

from tiktalk.formats import METRIC_KEYS
from tiktalk.metrics.diversity import distinct_n
from tiktalk.metrics.evaluate import evaluate, format_table
from tiktalk.metrics.scorers import MeteorProcess
from tiktalk.metrics.tokenize import char_tokenize

needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="METEOR needs Java")


@pytest.fixture(scope="module")
def meteor():
    if shutil.which("java") is None:
        pytest.skip("METEOR needs Java")
    with MeteorProcess() as proc:
        yield proc


def preds(pairs):
    return [{"dialogue_id": d, "response": r} for d, r in pairs]


def refs(pairs):
    return [{"dialogue_id": d, "references": list(rs)} for d, rs in pairs]


# ----------------------------------------------------------------------------- tokenization
def test_char_tokenize_every_non_space_code_point_no_lowercasing():
    assert char_tokenize("你好 啊\n") == "你 好 啊"
    assert char_tokenize("Hi, AB!") == "H i , A B !"
    assert char_tokenize("  \t\n") == ""
    # ideographic space and line separator are whitespace; an emoji is one code point
    assert char_tokenize("好\u3000的\u2028😀") == "好 的 😀"
    with pytest.raises(TypeError):
        char_tokenize(None)


# ----------------------------------------------------------------------------- Dist-n
def test_distinct_n_by_hand():
    # "哈哈哈", "哈哈": unigrams 5 (1 distinct), bigrams 2+1=3 (1 distinct), trigrams 1 (1)
    toks = [list("哈哈哈"), list("哈哈")]
    assert distinct_n(toks, 1) == pytest.approx(1 / 5)
    assert distinct_n(toks, 2) == pytest.approx(1 / 3)
    assert distinct_n(toks, 3) == pytest.approx(1.0)
    # n-grams stay inside a hypothesis: "ab","ab" -> bigrams {ab} of 2 (joined "abab" would give 2/3)
    assert distinct_n([["a", "b"], ["a", "b"]], 2) == pytest.approx(0.5)
    # no n-grams at all -> 0
    assert distinct_n([["a"], []], 2) == 0.0
    assert distinct_n([], 1) == 0.0
    with pytest.raises(ValueError):
        distinct_n(toks, 0)


# ----------------------------------------------------------------------------- hand-checkable
@needs_java
def test_single_pair_bleu_rouge_by_hand(meteor):
    # hyp 我爱你们 (4 chars) vs ref 我爱你 (3): BP = 1 (hyp longer)
    m = evaluate(preds([("d", "我爱你们")]), refs([("d", ["我爱你"])]), meteor=meteor)
    p1, p2, p3 = 3 / 4, 2 / 3, 1 / 2
    assert m["bleu_1"] == pytest.approx(100 * p1, rel=1e-6)
    assert m["bleu_2"] == pytest.approx(100 * math.sqrt(p1 * p2), rel=1e-6)
    assert m["bleu_3"] == pytest.approx(100 * (p1 * p2 * p3) ** (1 / 3), rel=1e-6)
    # the only 4-gram does not match: pycocoevalcap smooths 0 correct to tiny = 1e-15
    assert m["bleu_4"] == pytest.approx(100 * (p1 * p2 * p3 * 1e-15) ** (1 / 4), rel=1e-6)
    prec, rec, beta = 3 / 4, 1.0, 1.2  # LCS 3
    assert m["rouge_l"] == pytest.approx(100 * (1 + beta**2) * prec * rec / (rec + beta**2 * prec))
    assert m["cider"] == 0.0  # one dialogue: IDF log(1/df) with N=1 makes every weight 0
    assert 0 < m["meteor"] < 100
    assert m["n"] == 1
    assert list(m) == [*METRIC_KEYS, "n"]


@needs_java
def test_identical_hypotheses_and_cider_idf_from_references(meteor):
    # disjoint characters across dialogues: every n-gram has df 1 < N=2, so the TF-IDF vectors
    # of hyp and ref are equal and non-zero for n=1..4: cosine 1 each -> CIDEr-D 10 -> x100 1000
    data = [("a", "今天天气真好"), ("b", "我们去吃火锅吧")]
    m = evaluate(preds(data), refs([(d, [s]) for d, s in data]), meteor=meteor)
    for key in ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l"):
        assert m[key] == pytest.approx(100.0, rel=1e-6), key
    assert m["cider"] == pytest.approx(1000.0, rel=1e-9)
    # the same sentence in both dialogues: every n-gram has df = N, so IDF weights are 0
    same = [("a", "今天天气真好"), ("b", "今天天气真好")]
    m = evaluate(preds(same), refs([(d, [s]) for d, s in same]), meteor=meteor)
    assert m["bleu_4"] == pytest.approx(100.0, rel=1e-6)
    assert m["cider"] == 0.0


@needs_java
def test_chinese_reaches_meteor_intact(meteor):
    # If the characters were mangled on the way to the jar (e.g. all to '?'), disjoint
    # sentences of equal length would match; here they must score 0 on every overlap metric.
    data = [("a", "今天天气真好", "我们去吃火锅"), ("b", "红色的圆圈", "听到高音了")]
    m = evaluate(preds([(d, h) for d, h, _ in data]), refs([(d, [r]) for d, _, r in data]),
                 meteor=meteor)
    for key in ("bleu_1", "bleu_4", "meteor", "rouge_l", "cider"):
        assert m[key] == pytest.approx(0.0, abs=1e-6), key
    # and a partial match is partial
    m = evaluate(preds([("a", "今天天气真好")]), refs([("a", ["今天天气不好"])]), meteor=meteor)
    assert 0 < m["meteor"] < 100


@needs_java
def test_empty_hypotheses_count_as_zero(meteor):
    # a: hyp == ref (6 chars, disjoint from b); b: empty hyp, ref of 4 chars
    p = preds([("a", "今天天气真好"), ("b", " \n")])
    r = refs([("a", ["今天天气真好"]), ("b", ["我们走吧"])])
    m = evaluate(p, r, meteor=meteor)
    # BLEU: all hyp n-grams match, testlen 6, reflen 6 + 4: BP = exp(1 - 10/6)
    for n in (1, 2, 3, 4):
        assert m[f"bleu_{n}"] == pytest.approx(100 * math.exp(1 - 10 / 6), rel=1e-6)
    assert m["rouge_l"] == pytest.approx(50.0)      # mean of 1 and 0
    assert m["cider"] == pytest.approx(500.0)       # mean of 10 and 0, x100
    assert 0 < m["meteor"] < 100
    # Dist only sees "今天天气真好": unigrams 5/6, bigrams 5/5, trigrams 4/4
    assert m["dist_1"] == pytest.approx(100 * 5 / 6)
    assert m["dist_2"] == pytest.approx(100.0)
    assert m["dist_3"] == pytest.approx(100.0)
    assert m["n"] == 2
    # all hypotheses empty: every score 0, nothing crashes
    m = evaluate(preds([("a", ""), ("b", "")]), r, meteor=meteor)
    for key in METRIC_KEYS:
        assert m[key] == pytest.approx(0.0, abs=1e-6), key
    assert m["n"] == 2


# ----------------------------------------------------------------------------- protocols
CORPUS = [  # (id, hypothesis, [3 references]); one empty hypothesis, mixed overlaps
    ("d1", "哈哈哈哈笑死我了", ["哈哈哈笑死", "太好笑了吧", "笑死我了哈哈"]),
    ("d2", "这个颜色好好看", ["红色好好看啊", "这个颜色真好看", "我也喜欢这个颜色"]),
    ("d3", "", ["声音好高", "这是什么声音", "高音好听"]),
    ("d4", "我也想去吃火锅", ["火锅太香了", "我想吃火锅", "一起去吃吧"]),
    ("d5", "小狗好可爱啊", ["好可爱的小狗", "狗狗真可爱", "想养一只"]),
    ("d6", "今天天气真好 出去玩吧", ["天气真好", "出去玩吧", "今天天气不错啊"]),
    ("d7", "圆圈在动", ["红色的圆圈在动", "那个圆圈", "它在移动"]),
]


def tok(s):  # the protocol's tokenization, written out independently of the package
    return " ".join(ch for ch in s if not ch.isspace())


def direct(gts, res, meteor):
    """Scores straight from pycocoevalcap's scorers (what nlg-eval calls), raw scale."""
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    return {
        **{f"bleu_{i + 1}": b for i, b in enumerate(bleu)},
        "meteor": meteor.meteor.compute_score(gts, res)[0],
        "rouge_l": Rouge().compute_score(gts, res)[0],
        "cider": Cider().compute_score(gts, res)[0],
    }


@pytest.fixture(scope="module")
def corpus_metrics(meteor):
    p = preds([(d, h) for d, h, _ in CORPUS])
    r = refs([(d, rs) for d, _, rs in CORPUS])
    return {proto: evaluate(p, r, proto, meteor=meteor) for proto in ("per-reference", "all-references")}


OVERLAP = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider")


def test_per_reference_is_mean_of_direct_slot_scores(corpus_metrics, meteor):
    res = {i: [tok(h)] for i, (_, h, _) in enumerate(CORPUS)}
    slots = [direct({i: [tok(rs[k])] for i, (_, _, rs) in enumerate(CORPUS)}, res, meteor)
             for k in range(3)]
    got = corpus_metrics["per-reference"]
    for key in OVERLAP:
        assert got[key] == pytest.approx(100 * sum(s[key] for s in slots) / 3, rel=1e-9), key
    assert got["n"] == len(CORPUS)


@pytest.mark.parametrize("protocol", ["per-reference", "all-references"])
def test_without_meteor_the_rest_is_unchanged(corpus_metrics, protocol):
    p = preds([(d, h) for d, h, _ in CORPUS])
    r = refs([(d, rs) for d, _, rs in CORPUS])
    got = evaluate(p, r, protocol, use_meteor=False)     # starts no JVM
    assert "meteor" not in got                           # left out, not 0
    assert got == {k: v for k, v in corpus_metrics[protocol].items() if k != "meteor"}
    assert "METEOR" not in format_table(got) and "ROUGE-L" in format_table(got)


def test_all_references_is_direct_multi_reference_score(corpus_metrics, meteor):
    res = {i: [tok(h)] for i, (_, h, _) in enumerate(CORPUS)}
    gts = {i: [tok(r) for r in rs] for i, (_, _, rs) in enumerate(CORPUS)}
    want = direct(gts, res, meteor)
    got = corpus_metrics["all-references"]
    for key in OVERLAP:
        assert got[key] == pytest.approx(100 * want[key], rel=1e-9), key
    # the two protocols really differ (multi-reference BLEU clips against the best reference)
    assert got["bleu_1"] > corpus_metrics["per-reference"]["bleu_1"] + 1
    # Dist-n is independent of the protocol
    for key in ("dist_1", "dist_2", "dist_3"):
        assert got[key] == corpus_metrics["per-reference"][key]


def test_dist_on_corpus_matches_independent_count(corpus_metrics):
    for n in (1, 2, 3):
        grams = [tuple(t[i:i + n]) for _, h, _ in CORPUS for t in [tok(h).split()]
                 for i in range(len(t) - n + 1)]
        assert corpus_metrics["per-reference"][f"dist_{n}"] == pytest.approx(
            100 * len(set(grams)) / len(grams))


@needs_java
def test_prediction_order_does_not_matter(corpus_metrics, meteor):
    shuffled = preds([(d, h) for d, h, _ in CORPUS])
    random.Random(0).shuffle(shuffled)
    m = evaluate(shuffled, refs([(d, rs) for d, _, rs in CORPUS]), meteor=meteor)
    for key in (*METRIC_KEYS, "n"):
        assert m[key] == pytest.approx(corpus_metrics["per-reference"][key], rel=1e-9), key


@needs_java
def test_differing_reference_counts(meteor):
    p = preds([("a", "好看"), ("b", "好听"), ("c", "好吃")])
    r = refs([("a", ["好看", "真好看"]), ("b", ["好听", "真好听"]), ("c", ["好吃"])])
    with pytest.raises(ValueError, match=r"same number of references.*'c'"):
        evaluate(p, r, "per-reference", meteor=meteor)
    m = evaluate(p, r, "all-references", meteor=meteor)  # handled by nlg-eval's protocol
    assert m["bleu_1"] == pytest.approx(100.0)  # every hypothesis equals one of its references


# ----------------------------------------------------------------------------- validation
def test_missing_and_extra_ids_are_named():
    r = refs([(f"d{i}", ["好的"]) for i in range(8)])
    p = preds([(f"d{i}", "好") for i in range(1, 8)] + [("zz", "好")])
    with pytest.raises(ValueError) as exc:
        evaluate(p, r)
    msg = str(exc.value)
    assert "predictions lack 1 dialogue(s): 'd0'" in msg
    assert "'zz'" in msg and "not in the references" in msg
    # many missing: a few named plus the count
    with pytest.raises(ValueError, match=r"lack 7 dialogue\(s\): 'd1', 'd2', 'd3', 'd4', 'd5' and 2 more"):
        evaluate(preds([("d0", "好")]), r)


def test_duplicates_and_bad_rows_are_errors():
    r = refs([("a", ["好的"]), ("b", ["是的"])])
    with pytest.raises(ValueError, match=r"predictions: duplicate dialogue ids in 1 dialogue\(s\): 'a'"):
        evaluate(preds([("a", "好"), ("a", "好"), ("b", "是")]), r)
    with pytest.raises(ValueError, match=r"references: duplicate dialogue ids.*'b'"):
        evaluate(preds([("a", "好"), ("b", "是")]), r + refs([("b", ["对"])]))
    with pytest.raises(ValueError, match=r"empty reference.*'b'"):
        evaluate(preds([("a", "好"), ("b", "是")]), refs([("a", ["好的"]), ("b", ["是", " "])]))
    with pytest.raises(ValueError, match=r"'response' must be a string.*'b'"):
        evaluate([{"dialogue_id": "a", "response": "好"}, {"dialogue_id": "b", "response": None}], r)
    with pytest.raises(ValueError, match=r"non-empty list of strings.*'a'"):
        evaluate(preds([("a", "好"), ("b", "是")]), refs([("a", []), ("b", ["是的"])]))
    with pytest.raises(ValueError, match="row 0"):
        evaluate([{"id": "a", "response": "好"}], r)
    with pytest.raises(ValueError, match="unknown protocol"):
        evaluate(preds([("a", "好"), ("b", "是")]), r, "sentence")
    with pytest.raises(ValueError, match="no dialogues"):
        evaluate([], [])


@needs_java
def test_dead_meteor_process_raises_and_is_reaped():
    proc = MeteorProcess()
    proc.meteor.meteor_p.kill()  # before the JVM even finished starting
    proc.meteor.meteor_p.wait()
    with pytest.raises(RuntimeError, match="METEOR subprocess failed"):
        proc.compute_score({0: ["好 的"]}, {0: ["好 的"]})
    assert proc.closed and proc.meteor.meteor_p.returncode is not None
    proc.close()  # idempotent
    lock = proc.meteor.lock  # pycocoevalcap's __del__ acquires it: it must be free
    assert lock.acquire(timeout=1)
    lock.release()


def test_format_table_lists_every_metric(corpus_metrics):
    table = format_table(corpus_metrics["per-reference"], title="x")
    lines = table.splitlines()
    assert lines[0] == "x" and len(lines) == 2 + len(METRIC_KEYS) + 1
    assert f"{corpus_metrics['per-reference']['cider']:.2f}" in table


# ----------------------------------------------------------------------------- many systems


def _write_jsonl(path, rows):
    import json

    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@needs_java
def test_evaluate_many_equals_one_file_at_a_time(tmp_path, corpus_metrics):
    from tiktalk.metrics.evaluate import evaluate_files, evaluate_many

    ref = _write_jsonl(tmp_path / "refs.jsonl", refs([(d, rs) for d, _, rs in CORPUS]))
    systems = {
        "sys_a": preds([(d, h) for d, h, _ in CORPUS]),
        "sys_b": preds([(d, rs[0]) for d, _, rs in CORPUS]),     # copies a reference
        "sys_c": preds([(d, "") for d, _, _ in CORPUS]),         # all empty
    }
    pred_paths = {n: _write_jsonl(tmp_path / f"{n}.jsonl", p) for n, p in systems.items()}
    outs = {n: tmp_path / "out" / f"{n}.json" for n in systems}
    got = evaluate_many(pred_paths, ref, outs)
    assert list(got) == list(systems)
    assert got["sys_a"] == pytest.approx(corpus_metrics["per-reference"])
    for name in systems:
        one = evaluate_files(pred_paths[name], ref, tmp_path / f"{name}.single.json")
        assert got[name] == pytest.approx(one, abs=1e-9), name
        assert outs[name].read_text() == (tmp_path / f"{name}.single.json").read_text()
    assert got["sys_b"]["bleu_4"] > got["sys_a"]["bleu_4"] and got["sys_c"]["bleu_1"] == 0


def test_evaluate_many_checks_every_file_before_scoring(tmp_path):
    from tiktalk.metrics.evaluate import evaluate_many

    ref = _write_jsonl(tmp_path / "refs.jsonl", refs([("a", ["你好"]), ("b", ["再见"])]))
    good = _write_jsonl(tmp_path / "good.jsonl", preds([("a", "你好"), ("b", "再见")]))
    bad = _write_jsonl(tmp_path / "bad.jsonl", preds([("a", "你好")]))     # misses "b"
    outs = {"good": tmp_path / "good.json", "bad": tmp_path / "bad.json"}
    with pytest.raises(ValueError, match=r"bad\.jsonl.*'b'"):
        evaluate_many({"good": good, "bad": bad}, ref, outs)
    assert not outs["good"].exists() and not outs["bad"].exists()
    with pytest.raises(ValueError, match="outputs"):
        evaluate_many({"good": good}, ref, {"other": tmp_path / "x.json"})
