"""The demo wiring table's pieces: answer keys, the paired bootstrap, the margins table, and
the counterfactual (permuted) feature shards."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from tiktalk.data.release import dialogue_id
from tiktalk.demo.generate import generate_demo
from tiktalk.demo.keys import answer_key, key_hits, names_key
from tiktalk.io import write_jsonl
from tiktalk.media.counterfactual import derangement, permute_feature_shards
from tiktalk.media.store import FeatureStore, write_feature_shard
from tiktalk.report.wiring import (ItemScores, Relation, chance_level, counterfactual_table,
                                   markdown, paired_bootstrap, wiring_table)


# ---------------------------------------------------------------- answer keys


def test_keys_of_every_generated_reference(tmp_path):
    """Every val/test reference of a generated demo names exactly one key per word group,
    and all five references of an item name the same key."""
    generate_demo(tmp_path, seed=3, write_videos=False,
                  n_videos={"train": 4, "val": 4, "test": 8},
                  dialogues_per_video={"train": 2, "val": 2, "test": 2})
    types = json.loads((tmp_path / "item_types.json").read_text(encoding="utf-8"))
    attrs = json.loads((tmp_path / "video_attributes.json").read_text(encoding="utf-8"))
    seen = set()
    for split in ("val", "test"):
        release = json.loads((tmp_path / "release" / f"{split}.json").read_text(encoding="utf-8"))
        for vid, entry in release.items():
            for k, d in enumerate(entry["dialogues"]):
                kind = types[dialogue_id(vid, k)]
                keys = {answer_key(kind, r) for r in d["responses"]}
                assert len(keys) == 1, d["responses"]
                want = {"visual": (f"{attrs[vid]['colour']}色",),
                        "audio": (attrs[vid]["pitch"],), "text": ()}.get(kind)
                if want is not None:
                    assert keys == {want}
                # the canonical answer names its own key
                assert kind == "text" or names_key(kind, keys.pop(), d["responses"][0])
                seen.add(kind)
    assert seen == {"visual", "audio", "knowledge", "text"}


@pytest.mark.parametrize("kind,key,response,hit", [
    ("visual", ("红色",), "是一个红色的圆形。", True),
    ("visual", ("红色",), "是一个红色的方形。", True),        # the shape is not part of the key
    ("visual", ("红色",), "是一个蓝色的圆形。", False),
    ("visual", ("红色",), "红色的圆形，还是蓝色的圆形？", False),   # hedges between colours
    ("visual", ("红色",), "是一个圆形。", False),             # no colour
    ("audio", ("高音",), "背景里是高音的嘀嘀声。", True),
    ("audio", ("高音",), "低音还是高音？", False),
    ("knowledge", ("紧张",), "那你一定很紧张吧。", True),
    ("knowledge", ("紧张",), "那你一定很开心吧。", False),
    ("text", (), "早上好。", False),
])
def test_names_key_needs_the_key_and_nothing_else_of_its_kind(kind, key, response, hit):
    assert names_key(kind, key, response) is hit


def test_answer_key_names_the_bad_reference():
    with pytest.raises(ValueError, match="dialogue 7_0.*exactly one"):
        answer_key("audio", "没有声音。", where="dialogue 7_0")
    with pytest.raises(ValueError, match="unknown item type"):
        answer_key("smell", "香", where="x")
    assert key_hits("audio", ["a", "b"], ["是低音。", "是中音。"],
                    [["是低音的嘀嘀声。"], ["是高音的嘀嘀声。"]]) == [True, False]


# ---------------------------------------------------------------- bootstrap


def test_paired_bootstrap_interval_against_the_normal_approximation():
    """On 400 paired items the percentile interval of the mean difference matches the normal
    interval mean +- 1.96 * sd / sqrt(n) computed from the data (to a fraction of its width);
    the same seed gives the same interval."""
    rng = np.random.default_rng(1)
    a = rng.integers(0, 2, 400) * 100.0
    b = rng.integers(0, 2, 400) * 100.0 * (rng.random(400) < 0.7)
    d = a - b
    half = 1.96 * d.std(ddof=1) / np.sqrt(len(d))
    margin, low, high = paired_bootstrap(a, b, n_resamples=4000, seed=5)
    assert margin == pytest.approx(d.mean())
    assert low == pytest.approx(d.mean() - half, abs=0.15 * half)
    assert high == pytest.approx(d.mean() + half, abs=0.15 * half)
    assert paired_bootstrap(a, b, n_resamples=4000, seed=5) == (margin, low, high)


def test_paired_bootstrap_is_paired_and_checks_its_input():
    # the same items shifted by a constant: the paired interval is that constant exactly
    a = np.array([0.0, 100.0, 50.0, 20.0, 80.0])
    assert paired_bootstrap(a + 10, a, n_resamples=200) == (10.0, 10.0, 10.0)
    with pytest.raises(ValueError, match="equal-length"):
        paired_bootstrap([1.0, 2.0], [1.0])


# ---------------------------------------------------------------- margins table


def _write_case(tmp_path, preds: dict[str, list[str]], refs: list[list[str]], types: list[str]):
    ids = [f"{i}_0" for i in range(len(refs))]
    tmp_path.mkdir(parents=True, exist_ok=True)
    write_jsonl(tmp_path / "refs.jsonl", [{"dialogue_id": i, "references": r} for i, r in zip(ids, refs)])
    (tmp_path / "types.json").write_text(json.dumps(dict(zip(ids, types))), encoding="utf-8")
    paths = {}
    for name, responses in preds.items():
        paths[name] = tmp_path / f"{name}.jsonl"
        write_jsonl(paths[name], [{"dialogue_id": i, "response": r} for i, r in zip(ids, responses)])
    return ItemScores(paths, tmp_path / "refs.jsonl", tmp_path / "types.json")


def test_wiring_table_margins_thresholds_and_text_rows(tmp_path):
    n = 30
    refs = [[f"是{p}的嘀嘀声。"] for p in ("低音", "中音", "高音") * (n // 3)]
    refs += [["早上好，今天也要加油哦。", "早啊。"]] * n
    types = ["audio"] * n + ["text"] * n
    right = [r[0] for r in refs[:n]]
    always_low = ["是低音的嘀嘀声。"] * n
    preds = {
        "hears": right + ["早上好，今天也要加油哦。"] * n,
        "deaf": always_low + ["早啊。"] * n,
        "mute": always_low + ["。"] * n,
    }
    scores = _write_case(tmp_path, preds, refs, types)
    rels = (Relation("audio", "audio", "hears", "deaf"), Relation("audio", "audio", "deaf", "hears"),
            Relation("audio", "audio", "hears", "absent"))
    table = wiring_table(scores, rels, text_tolerance=10, n_resamples=500)
    audio = table[table.relation == "audio"].set_index("row")
    assert list(audio.index) == ["hears", "deaf"]            # the relation with a missing row is left out
    assert audio.loc["hears", "row_score"] == 100.0
    assert audio.loc["hears", "counterpart_score"] == pytest.approx(100 / 3)
    assert audio.loc["hears", "margin"] == pytest.approx(200 / 3)
    assert audio.loc["hears", "ci_low"] > 0 and audio.loc["hears", "holds"]
    assert audio.loc["deaf", "ci_high"] < 0 and not audio.loc["deaf", "holds"]
    assert set(audio.metric) == {"key_hit"} and set(audio.n) == {n}
    text = table[table.relation == "text"].set_index("row")
    # "hears" and "deaf" both answer with a reference (ROUGE-L 100); "mute" does not
    assert set(text.index) == {"deaf", "mute"} and set(text.counterpart) == {"hears"}
    assert set(text.metric) == {"rouge_l"} and set(text.threshold) == {-10.0}
    assert text.loc["deaf", "margin"] == 0 and text.loc["deaf", "holds"]
    assert text.loc["mute", "margin"] < -50 and not text.loc["mute", "holds"]



def test_wiring_markdown_escapes_row_names(tmp_path):
    """A label holding '|' stays inside its cell (the rows are named by Table 3's labels)."""
    n = 12
    refs = [[f"是{p}的嘀嘀声。"] for p in ("低音", "中音", "高音") * (n // 3)]
    right = [r[0] for r in refs]
    scores = _write_case(tmp_path, {"hears": right, "deaf": ["是低音的嘀嘀声。"] * n}, refs, ["audio"] * n)
    table = wiring_table(scores, (Relation("audio", "audio", "hears", "deaf"),), n_resamples=50)
    lines = markdown(table, {"hears": "A|B"}).splitlines()
    assert len(lines) == 3 and lines[1] == "|" + "---|" * 10
    assert len(re.split(r"(?<!\\)\|", lines[2])) == len(re.split(r"(?<!\\)\|", lines[0])) == 12
    assert r"| A\|B | deaf |" in lines[2]


def test_counterfactual_a_row_that_follows_its_video_loses_the_gain(tmp_path):
    """Real run: "hears" names every pitch. Permuted run: "hears" follows the wrong video, so
    it names the pitch of another item (right by chance for a third of them), "stuck" names
    the right pitch whatever the features (a leak: its gain survives the permutation)."""
    n = 30
    pitches = ("低音", "中音", "高音") * (n // 3)
    refs = [[f"是{p}的嘀嘀声。"] for p in pitches]
    types = ["audio"] * n
    right = [r[0] for r in refs]
    shifted = [f"是{pitches[(i + 1) % n]}的嘀嘀声。" if i % 3 else right[i] for i in range(n)]
    real = _write_case(tmp_path / "real", {"hears": right, "stuck": right}, refs, types)
    permuted = _write_case(tmp_path / "perm", {"hears": shifted, "stuck": right}, refs, types)
    rels = (Relation("audio", "audio", "hears", "x"), Relation("audio", "audio", "stuck", "x"),
            Relation("knowledge", "knowledge", "hears", "x"))
    t = counterfactual_table(real, permuted, rels, n_resamples=500).set_index("row")
    assert list(t.index) == ["hears", "stuck"]          # only frames/audio relations
    assert t.loc["hears", "real_score"] == 100 and t.loc["hears", "permuted_score"] == pytest.approx(100 / 3)
    assert t.loc["hears", "chance"] == pytest.approx(100 / 3) and chance_level("visual") == 25
    assert t.loc["hears", "loss_ci_low"] > 0 and t.loc["hears", "above_chance_ci_low"] <= 0
    assert t.loc["hears", "vanishes"]
    assert t.loc["stuck", "loss"] == 0 and not t.loc["stuck", "vanishes"]
    with pytest.raises(ValueError, match="no key"):
        chance_level("text")


def test_item_scores_name_the_items_without_a_type(tmp_path):
    with pytest.raises(ValueError, match="no item type"):
        ids = ["1_0", "2_0"]
        write_jsonl(tmp_path / "refs.jsonl", [{"dialogue_id": i, "references": ["是低音。"]} for i in ids])
        (tmp_path / "types.json").write_text(json.dumps({"1_0": "audio"}))
        write_jsonl(tmp_path / "p.jsonl", [{"dialogue_id": i, "response": "x"} for i in ids])
        ItemScores({"p": tmp_path / "p.jsonl"}, tmp_path / "refs.jsonl", tmp_path / "types.json")


# ---------------------------------------------------------------- counterfactual shards


def test_derangement_moves_every_video_and_is_seeded():
    ids = [str(i) for i in range(20)]
    m = derangement(reversed(ids), seed=4)
    assert sorted(m) == sorted(m.values()) == sorted(ids)
    assert all(k != v for k, v in m.items())
    assert m == derangement(ids, seed=4) and m != derangement(ids, seed=5)
    with pytest.raises(ValueError, match="at least two"):
        derangement(["1"], seed=0)


def test_permuted_shards_move_frames_and_audio_together(tmp_path):
    rng = np.random.default_rng(0)
    videos = [f"v{i}" for i in range(6)]
    frames = {v: rng.normal(size=(i + 1, 4)).astype(np.float16).astype(np.float32) for i, v in enumerate(videos)}
    audio = {v: rng.normal(size=(i % 3, 2)).astype(np.float16).astype(np.float32) for i, v in enumerate(videos)}
    src = tmp_path / "src"
    paths = []
    for k, part in enumerate((videos[:4], videos[4:])):
        paths.append(src / f"s{k:05d}.features.npz")
        write_feature_shard(paths[-1], part, [frames[v] for v in part], [audio[v] for v in part], 4, 2,
                            extra={"tokens_per_frame": np.int64(1)})
    chosen = ["v1", "v2", "v4", "v5"]                        # v0, v3 keep their features
    out, mapping = permute_feature_shards(paths, chosen, tmp_path / "perm", seed=2)
    assert [p.name for p in out] == [p.name for p in paths]
    assert mapping == derangement(chosen, seed=2)
    store = FeatureStore(out)
    for v in videos:
        source = mapping.get(v, v)
        np.testing.assert_array_equal(store.frames(v), frames[source])
        np.testing.assert_array_equal(store.audio(v), audio[source])
    with np.load(out[0]) as z:
        assert int(z["tokens_per_frame"]) == 1
    with pytest.raises(ValueError, match="in no shard.*nope"):
        permute_feature_shards(paths, ["v1", "nope"], tmp_path / "perm2", seed=2)
    with pytest.raises(ValueError, match="must not overwrite"):
        permute_feature_shards(paths, chosen, src, seed=2)
