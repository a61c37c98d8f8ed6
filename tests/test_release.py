"""The release adapter: strict on the fields it reads, tolerant of the rest (counted in the
report), configurable field names, and val carved from train when the release has none."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tiktalk.data.build import build_split
from tiktalk.data.release import (ReleaseError, ReleaseFields, ValCarving, carve_val, read_release,
                                  release_rows)
from tiktalk.formats import N_REFERENCES
from tiktalk.io import read_json, read_jsonl

ROOT = Path(__file__).resolve().parents[1]


def _write(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    return path


def test_fields_not_read_are_counted_never_an_error(tmp_path):
    path = _write(tmp_path / "train.json", {
        "7001": {"dialogues": [{"context": ["在吗"], "response": "在", "likes": 3, "user": "u1"},
                               {"context": ["好看"], "response": "是", "likes": 0}],
                 "title": "猫", "duration": 31.5},
        "7002": {"dialogues": [{"context": ["哈哈"], "response": "嗯"}], "title": "狗"},
    })
    rows, report = read_release(path, "train")
    assert [r["dialogue_id"] for r in rows] == ["7001_0", "7001_1", "7002_0"]
    assert rows[0] == {"dialogue_id": "7001_0", "video_id": "7001", "split": "train",
                       "context": ["在吗"], "responses": ["在"]}
    assert report["ignored_fields"] == {"dialogue.likes": 2, "dialogue.user": 1,
                                        "video.duration": 1, "video.title": 2}
    assert (report["n_videos"], report["n_dialogues"]) == (2, 3)


def test_field_names_are_configurable_and_strict(tmp_path):
    fields = ReleaseFields(dialogues="comments", context="history", responses="replies")
    refs = [f"r{i}" for i in range(N_REFERENCES)]
    path = _write(tmp_path / "test.json", {
        "7001": {"comments": [{"history": ["a", "b"], "replies": refs, "response": "ignored"}]}})
    rows, report = read_release(path, "test", fields=fields)
    assert rows[0]["context"] == ["a", "b"] and rows[0]["responses"] == refs
    assert report["ignored_fields"] == {"dialogue.response": 1}
    with pytest.raises(ReleaseError) as err:                  # the default names are not there
        read_release(path, "test")
    assert "video 7001: 'dialogues' is missing" in err.value.problems
    assert ReleaseFields.from_config({"context": "history"}).context == "history"
    with pytest.raises(ValueError, match="release.fields: unknown key 'contex'; did you mean 'context'"):
        ReleaseFields.from_config({"contex": "history"})


def _train_release(n_eligible: int, n_plain: int) -> dict:
    """Videos 8000..: eligible ones have one context with 6 distinct genuine responses (plus a
    duplicate and another dialogue); plain ones have 4 responses to one context."""
    data = {}
    for i in range(n_eligible):
        replies = [f"回{i}-{j}" for j in range(6)]
        data[str(8000 + i)] = {"dialogues": (
            [{"context": ["问", f"题{i}"], "response": r} for r in replies[:3]]
            + [{"context": ["别的"], "response": "无关"}]
            + [{"context": ["问", f"题{i}"], "response": replies[0]}]            # duplicate
            + [{"context": ["问", f"题{i}"], "response": r} for r in replies[3:]])}
    for i in range(n_plain):
        data[str(9000 + i)] = {"dialogues": [{"context": ["x"], "response": f"y{j}"} for j in range(4)]}
    return data


def test_val_is_carved_from_train_the_papers_way():
    train = _write_rows(_train_release(n_eligible=7, n_plain=3))
    kept, val, report = carve_val(train, ValCarving(videos=4, seed=1))
    chosen = sorted({r["video_id"] for r in val})
    assert len(chosen) == 4 and all(v.startswith("8") for v in chosen)
    assert not set(chosen) & {r["video_id"] for r in kept}       # val videos leave train
    assert len(kept) == len(train) - 4 * 8
    one = val[0]
    i = int(one["video_id"]) - 8000
    # the first five distinct responses in release order; id = the context's first dialogue
    assert one["responses"] == [f"回{i}-{j}" for j in range(5)]
    assert one["dialogue_id"] == f"{one['video_id']}_0" and one["context"] == ["问", f"题{i}"]
    assert len(val) == 4                                     # "别的" has one response: not val
    assert report == {"source": "train", "videos": 4, "min_responses": 5, "references": 5, "seed": 1,
                      "eligible_videos": 7, "val_videos": 4, "val_dialogues": 4,
                      "train_videos_removed": 4, "train_dialogues_removed": 32}
    # deterministic, and the seed decides which videos
    assert carve_val(train, ValCarving(videos=4, seed=1))[1] == val
    picks = {tuple(sorted({r["video_id"] for r in carve_val(train, ValCarving(videos=4, seed=s))[1]}))
             for s in range(6)}
    assert len(picks) > 1
    # fewer eligible videos than asked for: all of them, and the report says so
    assert carve_val(train, ValCarving(videos=1000))[2]["val_videos"] == 7
    with pytest.raises(ValueError, match="no train video has a dialogue with >= 5 genuine"):
        carve_val(_write_rows(_train_release(0, 3)), ValCarving())


def _write_rows(data: dict) -> list[dict]:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        return read_release(_write(Path(d) / "train.json", data), "train")[0]


def test_build_split_without_val_json_writes_val_and_a_smaller_train(tmp_path):
    path = _write(tmp_path / "train.json", _train_release(n_eligible=3, n_plain=2))
    out = tmp_path / "data"
    carving = {"videos": 2, "seed": 5}
    s_val = build_split(path, "val", out / "val.jsonl", out / "val_references.jsonl",
                        val_from_train=carving, out_report=out / "val.release.json")
    s_train = build_split(path, "train", out / "train.jsonl", val_from_train=carving,
                          out_report=out / "train.release.json")
    val, train = read_jsonl(out / "val.jsonl"), read_jsonl(out / "train.jsonl")
    assert s_val["n_videos"] == 2 and s_train["n_videos"] == 3
    assert not {r["video_id"] for r in val} & {r["video_id"] for r in train}
    refs = read_jsonl(out / "val_references.jsonl")
    assert [r["references"] for r in refs] == [r["responses"] for r in val]
    report = read_json(out / "val.release.json")
    assert report["val_from_train"]["val_videos"] == 2 and report["split"] == "val"
    with pytest.raises(ValueError, match="test needs its own test.json"):
        release_rows(path, "test", val_from_train=ValCarving())


def test_dag_reads_val_from_train_json_when_the_release_has_no_val(tmp_path):
    release = tmp_path / "release"
    release.mkdir()
    _write(release / "train.json", _train_release(3, 2))
    _write(release / "test.json", {"9100": {"dialogues": [{"context": ["x"], "responses": ["a"] * 5}]}})
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text(encoding="utf-8"))
    cfg["release"] = {"source": "release", "dir": str(release), "val_from_train": {"videos": 2}}
    cfg["knowledge"]["c3kg"] = str(tmp_path / "c3kg.tsv")
    (tmp_path / "c3kg.tsv").write_text("head\trelation\ttail\tweight\n")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    args = [sys.executable, "-m", "snakemake", "results/data/val.jsonl", "results/data/train.jsonl",
            "results/data/test.jsonl", "--cores", "1", "--directory", str(tmp_path), "--snakefile", str(ROOT / "Snakefile"),
            "--configfile", str(tmp_path / "config.yaml")]
    res = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    val = read_jsonl(tmp_path / "results/data/val.jsonl")
    train = read_jsonl(tmp_path / "results/data/train.jsonl")
    assert len({r["video_id"] for r in val}) == 2 and len({r["video_id"] for r in train}) == 3
    report = read_json(tmp_path / "results/data/val.release.json")
    assert report["file"] == str(release / "train.json") and report["val_from_train"]["videos"] == 2
    test = read_json(tmp_path / "results/data/test.release.json")
    assert test["file"] == str(release / "test.json") and "val_from_train" not in test
    assert [r["video_id"] for r in read_jsonl(tmp_path / "results/data/test.jsonl")] == ["9100"]
