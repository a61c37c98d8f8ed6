"""The media report and the demo item-type table on small hand-made inputs."""
import json

import numpy as np
import pandas as pd
import pytest

from tiktalk.io import write_jsonl
from tiktalk.report.items import item_type_table
from tiktalk.report.media import write_media_report

STATUS_HEADER = "video_id\tstatus\treason\tn_frames\tn_audio_frames\tduration\tdecoded_s\tnotes\n"


def test_media_report_counts_reasons_and_shards(tmp_path):
    (tmp_path / "s00000.status.tsv").write_text(
        STATUS_HEADER + "1\tok\t\t8\t3\t2.5\t2.5\t\n2\tfailed\tdecode: no video stream\t0\t0\t\t\t\n")
    (tmp_path / "s00001.status.tsv").write_text(STATUS_HEADER + "3\tok\t\t5\t0\t1.0\t1.0\tno audio stream\n")
    manifest = tmp_path / "videos.tsv"
    manifest.write_text("video_id\tsplit\tshard\n1\ttrain\ts00000\n2\ttest\ts00000\n3\ttest\ts00001\n")
    out = tmp_path / "out"
    summary = write_media_report([tmp_path / "s00000.status.tsv", tmp_path / "s00001.status.tsv"],
                                 manifest, out / "r.tsv", out / "shards.tsv", out / "f.png",
                                 out / "a.png")
    assert summary["videos"] == 3 and summary["ok"] == 2
    assert summary["frames"]["mean"] == 6.5
    by = pd.read_csv(out / "r.tsv", sep="\t", keep_default_na=False)
    failed = by[by["status"] == "failed"]
    assert failed[["split", "reason", "videos"]].values.tolist() == [["test", "decode: no video stream", 1]]
    shards = pd.read_csv(out / "shards.tsv", sep="\t")
    assert shards.set_index("shard")[["videos", "ok", "failed"]].to_dict("index") == {
        "s00000": {"videos": 2, "ok": 1, "failed": 1}, "s00001": {"videos": 1, "ok": 1, "failed": 0}}
    assert (out / "f.png").read_bytes()[:4] == b"\x89PNG"


def test_media_report_names_videos_without_status(tmp_path):
    (tmp_path / "s00000.status.tsv").write_text(STATUS_HEADER + "1\tok\t\t8\t3\t2.5\t2.5\t\n")
    manifest = tmp_path / "videos.tsv"
    manifest.write_text("video_id\tsplit\tshard\n1\ttrain\ts00000\n99\ttest\ts00000\n")
    with pytest.raises(ValueError, match="99"):
        write_media_report([tmp_path / "s00000.status.tsv"], manifest, tmp_path / "r.tsv",
                           tmp_path / "s.tsv", tmp_path / "f.png", tmp_path / "a.png")


def test_item_type_table_scores_each_type(tmp_path):
    refs = [{"dialogue_id": "a", "references": ["红色圆形"] * 5},
            {"dialogue_id": "b", "references": ["是高音的嘀嘀声"] * 5},
            {"dialogue_id": "c", "references": ["蓝色方形"] * 5},
            {"dialogue_id": "d", "references": ["早上好", "早啊"] + ["早安"] * 3}]
    write_jsonl(tmp_path / "refs.jsonl", refs)
    (tmp_path / "types.json").write_text(json.dumps({"a": "visual", "b": "audio", "c": "visual",
                                                     "d": "text"}))
    write_jsonl(tmp_path / "good.jsonl", [{"dialogue_id": "a", "response": "红色圆形"},
                                          {"dialogue_id": "b", "response": "是低音的嘀嘀声"},
                                          {"dialogue_id": "c", "response": "蓝色方形"},
                                          {"dialogue_id": "d", "response": "早啊"}])
    write_jsonl(tmp_path / "bad.jsonl", [{"dialogue_id": "a", "response": "红色方形"},
                                         {"dialogue_id": "b", "response": "是高音的嘀嘀声"},
                                         {"dialogue_id": "c", "response": "红色还是蓝色方形"},
                                         {"dialogue_id": "d", "response": "晚安"}])
    t = item_type_table({"good": tmp_path / "good.jsonl", "bad": tmp_path / "bad.jsonl"},
                        tmp_path / "refs.jsonl", tmp_path / "types.json").set_index(["baseline", "item_type"])
    assert t.loc[("good", "visual"), "hit"] == 100 and t.loc[("good", "visual"), "n"] == 2
    assert t.loc[("good", "visual"), "bleu_2"] == pytest.approx(100, abs=1e-6)
    assert t.loc[("bad", "visual"), "hit"] == 0 and t.loc[("bad", "visual"), "bleu_2"] < 100
    assert t.loc[("bad", "audio"), "hit"] == 100 and t.loc[("good", "audio"), "hit"] == 0
    # key hits: the colour alone decides (a wrong shape still names it); hedging does not
    assert t.loc[("good", "visual"), "key_hit"] == 100 and t.loc[("bad", "visual"), "key_hit"] == 50
    assert t.loc[("bad", "audio"), "key_hit"] == 100 and t.loc[("good", "audio"), "key_hit"] == 0
    assert t.loc[("good", "text"), "hit"] == 100 and np.isnan(t.loc[("good", "text"), "key_hit"])


def test_item_type_table_needs_a_type_for_every_dialogue(tmp_path):
    write_jsonl(tmp_path / "refs.jsonl", [{"dialogue_id": "a", "references": ["x"]}])
    write_jsonl(tmp_path / "p.jsonl", [{"dialogue_id": "a", "response": "x"}])
    (tmp_path / "types.json").write_text("{}")
    with pytest.raises(ValueError, match="'a'"):
        item_type_table({"p": tmp_path / "p.jsonl"}, tmp_path / "refs.jsonl", tmp_path / "types.json")
