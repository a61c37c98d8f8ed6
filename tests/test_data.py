"""Data stage: release adapter (errors name file and record), dialogue tables, manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tiktalk.data.build import build_manifest, build_split, check_video_ids
from tiktalk.data.dialogues import read_dialogues
from tiktalk.data.manifest import (manifest_from_ids, read_manifest, shard_videos, shards_of,
                                   videos_of_shard, write_manifest)
from tiktalk.data.predictions import read_predictions, write_predictions
from tiktalk.data.release import ReleaseError, dialogue_id, load_release
from tiktalk.demo.generate import generate_demo
from tiktalk.formats import MANIFEST_COLUMNS, N_REFERENCES, shard_name
from tiktalk.io import read_jsonl

V1, V2 = "7012345678901234567", "7012345678901234568"


def _refs(n=N_REFERENCES):
    return [f"回复{i}" for i in range(n)]


def _write(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo_text")
    generate_demo(out, seed=3, write_videos=False,
                  n_videos={"train": 10, "val": 3, "test": 4},
                  dialogues_per_video={"train": 3, "val": 2, "test": 2})
    return out


# ---- release adapter ----------------------------------------------------------------------

def test_load_release_good_data(tmp_path):
    path = _write(tmp_path / "val.json", {
        V2: {"dialogues": [{"context": ["你好"], "responses": _refs()}]},
        V1: {"dialogues": [{"context": ["a", "b"], "responses": _refs()},
                           {"context": ["c"], "responses": _refs()}]},
    })
    rows = load_release(path, "val")
    assert [r["dialogue_id"] for r in rows] == [f"{V1}_0", f"{V1}_1", f"{V2}_0"]
    assert rows[0] == {"dialogue_id": dialogue_id(V1, 0), "video_id": V1, "split": "val",
                       "context": ["a", "b"], "responses": _refs()}


def test_load_release_train_single_response(tmp_path):
    path = _write(tmp_path / "train.json", {V1: {"dialogues": [{"context": ["在吗"], "response": "在"}]}})
    assert load_release(path, "train")[0]["responses"] == ["在"]
    with pytest.raises(ReleaseError, match="responses"):   # train layout is not a val layout
        load_release(path, "val")


def test_demo_release_round_trips_with_generator_ids(demo):
    types = json.loads((demo / "item_types.json").read_text(encoding="utf-8"))
    ids = set()
    for split in ("train", "val", "test"):
        ids |= {r["dialogue_id"] for r in load_release(demo / "release" / f"{split}.json", split)}
    assert ids == set(types)


def _problems(path: Path, split: str, **kw) -> list[str]:
    with pytest.raises(ReleaseError) as info:
        load_release(path, split, **kw)
    assert str(path) in str(info.value)
    return info.value.problems


def test_every_malformed_record_is_reported_with_its_key(tmp_path):
    good = {"context": ["你好"], "responses": _refs()}
    path = _write(tmp_path / "test.json", {
        V1: {"dialogues": [good,
                           {"responses": _refs()},                        # 1: missing context
                           {"context": "不是列表", "responses": _refs()},   # 2: wrong type
                           {"context": ["x"], "responses": _refs(4)}]},   # 3: 4 references
        "bad id!": {"dialogues": [good]},
        V2: {"dialogues": [good, {"context": ["x"], "responses": _refs(), "extra": 1}]},  # fine
        "7000000000000000001": {"dialogues": []},
        "7000000000000000002": ["not", "an", "object"],
    })
    problems = _problems(path, "test")
    text = "\n".join(problems)
    assert f"video {V1} dialogue 1: 'context' is missing" in text
    assert f'video {V1} dialogue 2 field "context": has type str, expected array' in text
    assert f"video {V1} dialogue 3 field \"responses\": has 4 references, expected {N_REFERENCES}" in text
    assert "video 'bad id!': id does not match" in text
    assert f"video {V2}" not in text            # a field the adapter does not read is no error
    assert "video 7000000000000000001" in text
    assert "video 7000000000000000002: has type list, expected object" in text
    assert len(problems) == 6


def test_bad_video_id_pattern_is_an_argument(tmp_path):
    path = _write(tmp_path / "val.json", {"abc": {"dialogues": [{"context": ["x"], "responses": _refs()}]}})
    assert load_release(path, "val")                              # default pattern accepts it
    assert "video 'abc'" in _problems(path, "val", video_id_pattern=r"^[0-9]{19}$")[0]


def test_non_json_and_duplicate_keys_and_empty(tmp_path):
    bad = tmp_path / "train.json"
    bad.write_text('{"7012345678901234567": {"dialogues": [', encoding="utf-8")
    assert "not valid JSON" in _problems(bad, "train")[0]
    dup = tmp_path / "dup.json"
    entry = '{"dialogues": [{"context": ["x"], "response": "y"}]}'
    nested = '{"dialogues": [{"context": ["x"], "response": "y"}, {"context": ["x"], "context": ["z"], "response": "y"}]}'
    dup.write_text(f'{{"{V1}": {entry}, "{V1}": {entry}, "{V2}": {nested}}}', encoding="utf-8")
    assert _problems(dup, "train") == [
        f"video {V1}: duplicate video id (only the last would be kept)",
        f"video {V2} dialogue 1: duplicate key 'context' (only the last would be kept)",
    ]
    assert "contains no videos" in _problems(_write(tmp_path / "e.json", {}), "train")[0]
    assert "has type list" in _problems(_write(tmp_path / "l.json", []), "train")[0]
    blank = _write(tmp_path / "b.json", {V1: {"dialogues": [{"context": ["  "], "response": "y"}]}})
    assert 'dialogue 0 field "context"[0]: is empty or blank' in _problems(blank, "train")[0]


# ---- dialogue tables ----------------------------------------------------------------------

def test_build_split_writes_tables(demo, tmp_path):
    out = tmp_path / "data"
    s = build_split(demo / "release" / "val.json", "val", out / "val.jsonl", out / "val_references.jsonl")
    assert s == {"split": "val", "n_videos": 3, "n_dialogues": 6}
    rows = read_dialogues(out / "val.jsonl", "val")
    refs = read_jsonl(out / "val_references.jsonl")
    assert [r["dialogue_id"] for r in refs] == [r["dialogue_id"] for r in rows]
    assert all(len(r["references"]) == N_REFERENCES and set(r) == {"dialogue_id", "references"} for r in refs)
    assert build_split(demo / "release" / "train.json", "train", out / "train.jsonl")["n_dialogues"] == 30
    with pytest.raises(ValueError, match="out_references"):
        build_split(demo / "release" / "test.json", "test", out / "test.jsonl")
    with pytest.raises(ReleaseError):
        build_split(demo / "release" / "train.json", "test", out / "x.jsonl", out / "y.jsonl")
    assert not (out / "x.jsonl").exists()


def test_read_dialogues_rejects_bad_rows(tmp_path):
    path = tmp_path / "val.jsonl"
    path.write_text(json.dumps({"dialogue_id": "a_0", "video_id": "a", "split": "val",
                                "context": ["x"], "responses": ["1", "2"]}) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"row 1 \(a_0\): responses must be a list of 5"):
        read_dialogues(path)
    rows = [{"dialogue_id": "a_0", "video_id": "a", "split": "val", "context": ["x"],
             "responses": ["1"] * N_REFERENCES},
            {"dialogue_id": "a_0", "video_id": "a", "split": "val", "context": [],
             "responses": ["1"] * N_REFERENCES},
            {"dialogue_id": "b_0", "video_id": "b", "context": ["x"], "responses": ["1"]}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(ValueError) as err:
        read_dialogues(path, "test")
    message = str(err.value)
    assert message.startswith(f"{path}: 5 bad dialogue row(s)")
    for problem in ("row 1 (a_0): split 'val', expected 'test'", "row 2 (a_0): duplicate dialogue_id",
                    "row 2 (a_0): context must be a non-empty list", "row 3 (b_0): keys"):
        assert problem in message, problem


def test_dialogue_table_round_trip(demo, tmp_path):
    from tiktalk.data.dialogues import write_dialogues

    rows = load_release(demo / "release" / "test.json", "test")
    assert write_dialogues(tmp_path / "test.jsonl", rows) == len(rows)
    assert read_dialogues(tmp_path / "test.jsonl", "test") == rows


def test_predictions_round_trip_in_dialogue_order(tmp_path):
    dialogues = [{"dialogue_id": "b"}, {"dialogue_id": "a"}]
    assert write_predictions(tmp_path / "p.jsonl", dialogues, ["你好", ""]) == 2
    assert read_predictions(tmp_path / "p.jsonl") == [{"dialogue_id": "b", "response": "你好"},
                                                      {"dialogue_id": "a", "response": ""}]
    with pytest.raises(ValueError, match=r"q\.jsonl: 1 predictions for 2 dialogues"):
        write_predictions(tmp_path / "q.jsonl", dialogues, ["x"])
    assert not (tmp_path / "q.jsonl").exists()


# ---- manifest -----------------------------------------------------------------------------

def _table(path: Path, split: str, video_ids: list[str]) -> Path:
    n = 1 if split == "train" else N_REFERENCES
    path.write_text("".join(
        json.dumps({"dialogue_id": f"{v}_{k}", "video_id": v, "split": split, "context": ["x"],
                    "responses": ["y"] * n}) + "\n"
        for v in video_ids for k in range(2)), encoding="utf-8")
    return path


def test_manifest_sharding(tmp_path):
    train = _table(tmp_path / "train.jsonl", "train", [f"v{i:02d}" for i in (9, 3, 7, 1, 5, 0)])
    test = _table(tmp_path / "test.jsonl", "test", ["v04", "v02", "v06", "v08"])
    out = tmp_path / "videos.tsv"
    summary = build_manifest([train, test], 4, out)
    assert summary == {"n_videos": 10, "n_shards": 3, "per_split": {"train": 6, "val": 0, "test": 4}}
    assert out.read_text().splitlines()[0] == "\t".join(MANIFEST_COLUMNS)
    rows = read_manifest(out)
    assert [r["video_id"] for r in rows] == [f"v{i:02d}" for i in range(10)]
    assert [r["shard"] for r in rows] == ["s00000"] * 4 + ["s00001"] * 4 + ["s00002"] * 2
    assert rows[2] == {"video_id": "v02", "split": "test", "shard": "s00000"}
    assert shards_of(out) == ["s00000", "s00001", "s00002"]
    assert videos_of_shard(out, "s00002") == ["v08", "v09"]
    assert shard_videos(out) == {"s00000": ["v00", "v01", "v02", "v03"],
                                 "s00001": ["v04", "v05", "v06", "v07"], "s00002": ["v08", "v09"]}
    with pytest.raises(KeyError, match="s00003"):
        videos_of_shard(out, "s00003")


def test_manifest_cross_split_duplicate_names_the_video(tmp_path):
    train = _table(tmp_path / "train.jsonl", "train", ["a1", "a2", "shared9"])
    val = _table(tmp_path / "val.jsonl", "val", ["b1", "shared9"])
    with pytest.raises(ValueError, match="shared9 in train, val"):
        build_manifest([train, val], 2, tmp_path / "videos.tsv")
    assert not (tmp_path / "videos.tsv").exists()


def test_manifest_checks_video_ids(tmp_path):
    train = _table(tmp_path / "train.jsonl", "train", ["ok", "not ok"])
    with pytest.raises(ValueError, match=r"train\.jsonl: 1 video id.*'not ok'"):
        build_manifest([train], 2, tmp_path / "videos.tsv")
    check_video_ids(["7012345678901234567"], r"^[0-9]{19}$")
    with pytest.raises(ValueError, match="'12'"):
        check_video_ids(["12"], r"^[0-9]{19}$")


def test_read_manifest_rejects_broken_files(tmp_path):
    path = tmp_path / "m.tsv"
    header = "\t".join(MANIFEST_COLUMNS)
    cases = {
        "b\ttrain\ts00000\na\ttrain\ts00000": "out of id order",
        "a\ttrain\ts00000\nb\tdev\ts00000": "unknown split",
        "a\ttrain\ts00000\nb\ttrain\ts00002": "does not follow",
        "a\ttrain": "expected 3 fields",
        "a\ttrain\tshard0": "bad shard name",
    }
    for body, message in cases.items():
        path.write_text(f"{header}\n{body}\n", encoding="utf-8")
        with pytest.raises(ValueError, match=message):
            read_manifest(path)
    path.write_text("id\tsplit\tshard\n", encoding="utf-8")
    with pytest.raises(ValueError, match="header"):
        read_manifest(path)


def test_manifest_from_ids_at_paper_scale(tmp_path):
    ids = [str(7_000_000_000_000_000_000 + 7919 * i) for i in range(38_703)]
    split_of = {v: ("train" if i < 35_703 else "val" if i < 36_703 else "test") for i, v in enumerate(ids)}
    rows = manifest_from_ids(reversed(ids), split_of, 256)
    write_manifest(rows, tmp_path / "videos.tsv")
    back = read_manifest(tmp_path / "videos.tsv")
    assert len(back) == 38_703 and back[-1]["shard"] == shard_name(38_702 // 256)
    assert len(shards_of(tmp_path / "videos.tsv")) == 152
    with pytest.raises(ValueError, match="duplicate video id.*7000000000000000000"):
        manifest_from_ids(ids + ids[:1], split_of, 256)
    with pytest.raises(ValueError, match="shard_size"):
        manifest_from_ids(ids, split_of, 0)
