"""The embedded demo dataset: determinism, real decodable media, and signal per modality."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import av
import numpy as np
import pytest

from tiktalk.data.release import load_release
from tiktalk.demo.generate import generate_demo
from tiktalk.demo.generate import type_counts
from tiktalk.demo.texts import COLOURS, EMOTIONS, ITEM_SHARES, PITCHES, SHAPES
from tiktalk.formats import C3KG_COLUMNS, FLOW_RELATIONS, N_REFERENCES, SPLITS

SMALL = dict(n_videos={"train": 8, "val": 4, "test": 4},
             dialogues_per_video={"train": 4, "val": 2, "test": 2})


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    generate_demo(out, seed=7, **SMALL)
    return out


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _rows(root: Path, split: str) -> list[dict]:
    return load_release(root / "release" / f"{split}.json", split)


def _types(root: Path) -> dict[str, str]:
    return json.loads((root / "item_types.json").read_text(encoding="utf-8"))


def _attrs(root: Path) -> dict[str, dict]:
    return json.loads((root / "video_attributes.json").read_text(encoding="utf-8"))


def test_same_seed_same_bytes_other_seed_differs(demo, tmp_path):
    again = tmp_path / "again"
    summary = generate_demo(again, seed=7, **SMALL)
    assert _digest(again) == _digest(demo)
    assert summary["n_dialogues"] == {"train": 32, "val": 8, "test": 8}
    other = tmp_path / "other"
    generate_demo(other, seed=8, write_videos=False, **SMALL)
    assert (other / "release" / "test.json").read_bytes() != (demo / "release" / "test.json").read_bytes()


def test_video_ids_look_like_douyin_and_are_unique(demo):
    attrs = _attrs(demo)
    assert len(attrs) == 16
    assert all(re.fullmatch(r"[1-9][0-9]{18}", vid) for vid in attrs)
    files = {p.stem for p in (demo / "videos").glob("*.mp4")}
    assert files == set(attrs)


def test_val_test_do_not_depend_on_train_size(demo, tmp_path):
    out = tmp_path / "bigger_train"
    generate_demo(out, seed=7, write_videos=False,
                  n_videos={"train": 12, "val": 4, "test": 4}, dialogues_per_video=SMALL["dialogues_per_video"])
    for split in ("val", "test"):
        assert (out / "release" / f"{split}.json").read_bytes() == (demo / "release" / f"{split}.json").read_bytes()


def _decode(path: Path):
    with av.open(str(path)) as c:
        kinds = [(s.type, s.codec_context.name) for s in c.streams]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    audio = None
    if any(k == "audio" for k, _ in kinds):
        with av.open(str(path)) as c:
            audio = np.concatenate([f.to_ndarray()[0] for f in c.decode(audio=0)])
    return kinds, frames, audio


def _shape_and_colour(frame: np.ndarray) -> tuple[str, str]:
    """Colour word (nearest palette entry) and shape of the saturated blob. Shape: the corner
    zone of the blob's bounding box, |dx| + |dy| > 1.45 h from its centre (h: half its size),
    is empty for a circle (its points reach sqrt(2) h at most) and mostly filled for a square
    (a triangle of legs 0.55 h in each corner, beyond the codec's blurred edge)."""
    f = frame.astype(int)
    mask = (f.max(axis=2) - f.min(axis=2)) > 80
    ys, xs = np.nonzero(mask)
    mean = f[mask].mean(axis=0)
    colour = min(COLOURS, key=lambda c: np.sum((np.array(COLOURS[c]) - mean) ** 2))
    cy, cx = (ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2
    half = (ys.max() - ys.min() + xs.max() - xs.min() + 2) / 4
    yy, xx = np.mgrid[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    zone = np.abs(yy - cy) + np.abs(xx - cx) > 1.45 * half
    filled = mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1][zone].mean()
    return colour, ("方形" if filled > 0.3 else "圆形")


def test_videos_decode_with_expected_streams_and_content(demo):
    attrs = _attrs(demo)
    silent = 0
    for vid, a in attrs.items():
        kinds, frames, audio = _decode(demo / "videos" / f"{vid}.mp4")
        assert kinds[0] == ("video", "h264")
        assert len(frames) == round(a["duration"] * 8) and frames[0].shape == (96, 96, 3)
        assert not np.array_equal(frames[0], frames[-1]), "the shape must move"
        for frame in (frames[0], frames[len(frames) // 2]):
            assert _shape_and_colour(frame) == (a["colour"], a["shape"])
        if a["has_audio"]:
            assert kinds[1] == ("audio", "aac") and len(kinds) == 2
            spectrum = np.abs(np.fft.rfft(audio[:16000]))
            peak = np.argmax(spectrum) * 16000 / 16000  # 1 s window: bin = 1 Hz
            assert min(PITCHES, key=lambda p: abs(PITCHES[p] - peak)) == a["pitch"]
            assert abs(len(audio) / 16000 - a["duration"]) < 0.2
        else:
            silent += 1
            assert len(kinds) == 1 and audio is None and a["pitch"] is None
    assert silent >= 2   # round(0.15 * 4) per small val/test split, plus train
    durations = {a["duration"] for a in attrs.values()}
    assert len(durations) > 2 and min(durations) >= 2 and max(durations) <= 6


def test_visual_and_audio_responses_name_this_videos_attributes(demo):
    types, attrs = _types(demo), _attrs(demo)
    checked = {"visual": 0, "audio": 0}
    for split in SPLITS:
        for row in _rows(demo, split):
            kind, a = types[row["dialogue_id"]], attrs[row["video_id"]]
            if kind == "visual":
                for r in row["responses"]:
                    assert f"{a['colour']}色的{a['shape']}" in r
                    assert not any(f"{c}色" in r for c in COLOURS if c != a["colour"])
            elif kind == "audio":
                assert a["has_audio"]
                assert all(a["pitch"] in r for r in row["responses"])
            else:
                continue
            checked[kind] += 1
    assert checked["visual"] > 0 and checked["audio"] > 0


def test_item_types_in_paper_shares_and_references(demo):
    types = _types(demo)
    for split in SPLITS:
        rows = _rows(demo, split)
        counts = {}
        for row in rows:
            counts[types[row["dialogue_id"]]] = counts.get(types[row["dialogue_id"]], 0) + 1
            assert 1 <= len(row["context"]) <= 3
            want = 1 if split == "train" else N_REFERENCES
            assert len(row["responses"]) == want
            if split != "train":
                assert len(set(row["responses"])) == N_REFERENCES
        assert sorted(counts) == ["audio", "knowledge", "text", "visual"]
        # the paper's Fig. 2 proportions (texts.ITEM_SHARES), to within one dialogue
        assert counts == type_counts(len(rows)), (split, counts)
    assert set(types) == {r["dialogue_id"] for s in SPLITS for r in _rows(demo, s)}


def _c3kg(root: Path) -> list[dict]:
    lines = (root / "c3kg.tsv").read_text(encoding="utf-8").splitlines()
    assert tuple(lines[0].split("\t")) == C3KG_COLUMNS
    return [dict(zip(C3KG_COLUMNS, line.split("\t"))) for line in lines[1:]]


def test_answers_balanced_over_the_items_that_ask_for_them(tmp_path):
    """Colours and shapes over the visual items, pitches over the audio items, emotions over
    the knowledge items: no answer more frequent than another by more than one video's items,
    so a model that always gives the same answer cannot beat chance."""
    per_video = {"train": 6, "val": 2, "test": 2}
    generate_demo(tmp_path, seed=11, write_videos=False, n_videos={"train": 40, "val": 12, "test": 30},
                  dialogues_per_video=per_video)
    types, attrs = _types(tmp_path), _attrs(tmp_path)
    emotion = {r["head"]: r["tail"] for r in _c3kg(tmp_path) if r["relation"] == "emotion_cause"}
    for split in SPLITS:
        counts = {"colour": {}, "shape": {}, "pitch": {}, "emotion": {}}
        for row in _rows(tmp_path, split):
            kind, a = types[row["dialogue_id"]], attrs[row["video_id"]]
            asked = {"visual": ("colour", "shape"), "audio": ("pitch",)}.get(kind, ())
            for attr in asked:
                counts[attr][a[attr]] = counts[attr].get(a[attr], 0) + 1
            if kind == "knowledge":
                head = next(h for h in emotion if h in row["context"][-1])
                counts["emotion"][emotion[head]] = counts["emotion"].get(emotion[head], 0) + 1
        for attr, values in (("colour", COLOURS), ("shape", SHAPES), ("pitch", PITCHES),
                             ("emotion", EMOTIONS)):
            c = [counts[attr].get(v, 0) for v in values]
            assert max(c) - min(c) <= per_video[split], (split, attr, counts[attr])


def test_c3kg_table_has_flows_and_atomic_relations(demo):
    rows = _c3kg(demo)
    relations = {r["relation"] for r in rows}
    assert set(FLOW_RELATIONS) <= relations
    assert {"xReact", "xWant"} <= relations
    assert all(0 < float(r["weight"]) <= 1 for r in rows)
    # only the emotion flow carries an emotion word: no other relation leaks the answer
    for r in rows:
        if r["relation"] != "emotion_cause":
            assert r["tail"] not in EMOTIONS


def test_knowledge_items_need_the_graph(demo):
    types = _types(demo)
    cause = {r["head"]: r["tail"] for r in _c3kg(demo) if r["relation"] == "emotion_cause"}
    train_text = " ".join(" ".join(r["context"]) for r in _rows(demo, "train"))
    n = 0
    for split in SPLITS:
        for row in _rows(demo, split):
            if types[row["dialogue_id"]] != "knowledge":
                continue
            heads = [h for h in cause if h in row["context"][-1]]
            assert len(heads) == 1, row
            assert all(cause[heads[0]] in r for r in row["responses"])
            if split != "train":
                assert heads[0] not in train_text, "val/test knowledge heads must be unseen in training"
                n += 1
    assert n > 0
    # training knowledge items still teach every emotion
    train_emotions = {cause[h] for h in cause if h in train_text}
    assert train_emotions == set(EMOTIONS)


def test_text_items_response_fixed_by_context(demo):
    types = _types(demo)
    target: dict[str, str] = {}
    for row in _rows(demo, "train"):
        if types[row["dialogue_id"]] == "text":
            assert target.setdefault(row["context"][-1], row["responses"][0]) == row["responses"][0]
    assert len(target) >= 2
    for split in ("val", "test"):
        for row in _rows(demo, split):
            if types[row["dialogue_id"]] == "text" and row["context"][-1] in target:
                assert row["responses"][0] == target[row["context"][-1]]


def test_item_shares_per_split(tmp_path):
    """A split given its own shares (the default config balances the test split) holds them,
    audio items still only on videos with sound; the other splits keep the paper's shares."""
    balanced = {"visual": 0.25, "audio": 0.25, "knowledge": 0.25, "text": 0.25}
    sizes = dict(n_videos={"train": 8, "val": 4, "test": 20}, dialogues_per_video=SMALL["dialogues_per_video"])
    summary = generate_demo(tmp_path, seed=7, write_videos=False, item_shares={"test": balanced}, **sizes)
    assert summary["item_types"]["test"] == {"visual": 10, "audio": 10, "knowledge": 10, "text": 10}
    assert summary["item_types"]["train"] == type_counts(32)
    types, attrs = _types(tmp_path), _attrs(tmp_path)
    for row in _rows(tmp_path, "test"):
        if types[row["dialogue_id"]] == "audio":
            assert attrs[row["video_id"]]["has_audio"]
    # the other splits are the same; the test videos are, up to their balanced attributes
    plain = tmp_path / "plain"
    generate_demo(plain, seed=7, write_videos=False, **sizes)
    same = ("split", "duration", "has_audio")
    assert {v: [a[k] for k in same] for v, a in _attrs(plain).items()} == \
        {v: [a[k] for k in same] for v, a in attrs.items()}
    for split in ("train", "val"):
        assert (plain / "release" / f"{split}.json").read_bytes() == \
            (tmp_path / "release" / f"{split}.json").read_bytes()


@pytest.mark.parametrize("shares,match", [
    ({"test": {"visual": 0.5, "audio": 0.5}}, "exactly the item types"),
    ({"test": {"visual": 0.5, "audio": 0.5, "knowledge": 0.5, "text": 0.5}}, "sum to 2"),
    ({"test": {"visual": 0.5, "audio": 0.5, "knowledge": 0.0, "text": 0.0}}, "must be > 0"),
    ({"tset": {"visual": 0.25, "audio": 0.25, "knowledge": 0.25, "text": 0.25}}, "unknown split"),
])
def test_item_shares_are_checked(tmp_path, shares, match):
    with pytest.raises(ValueError, match=match):
        generate_demo(tmp_path, write_videos=False, item_shares=shares, **SMALL)


def test_generation_rejects_bad_sizes(tmp_path):
    with pytest.raises(ValueError, match="val"):
        generate_demo(tmp_path, n_videos={"val": 0}, write_videos=False)
    with pytest.raises(ValueError, match="even"):
        generate_demo(tmp_path, size=95, write_videos=False)


def test_type_counts_follow_the_shares_and_cover_every_type():
    assert type_counts(48) == {"visual": 19, "audio": 5, "knowledge": 14, "text": 10}
    for n in range(4, 200):
        c = type_counts(n)
        assert sum(c.values()) == n and min(c.values()) >= 1
        assert all(abs(c[t] - ITEM_SHARES[t] * n) <= 1 for t in c), (n, c)
    with pytest.raises(ValueError, match="need at least 4"):
        type_counts(3)
    assert type_counts(120, {"visual": 0.25, "audio": 0.25, "knowledge": 0.25, "text": 0.25}) == \
        {"visual": 30, "audio": 30, "knowledge": 30, "text": 30}
