"""The media stage through Snakemake itself: a release whose videos are partly damaged, served
by a misbehaving HTTP server (``id,url`` CSV source). The DAG must finish, every good video
must have its features, and every bad one must be listed with a reason (issue: media at scale).
"""
import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from media_utils import (drop_midway, first_then, loopback_server, serve_bytes, serve_status,
                         write_video)
from tiktalk.media.store import FeatureStore

ROOT = Path(__file__).resolve().parents[1]


def _release(dirpath: Path, split_of: dict[str, str]) -> None:
    dirpath.mkdir(parents=True)
    for split in ("train", "val", "test"):
        data = {}
        for vid, s in split_of.items():
            if s != split:
                continue
            dialogue = {"context": ["你看这个视频。"]}
            if split == "train":
                dialogue["response"] = "挺好看的。"
            else:
                dialogue["responses"] = ["挺好看的。", "不错。", "好看。", "还行吧。", "喜欢。"]
            data[vid] = {"dialogues": [dialogue]}
        (dirpath / f"{split}.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _read_status(results: Path) -> dict[str, dict]:
    rows = {}
    for path in sorted((results / "media").glob("s*.status.tsv")):
        with open(path, encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                assert row["video_id"] not in rows, f"{row['video_id']} in two shards"
                rows[row["video_id"]] = row
    return rows


@pytest.mark.slow
def test_damaged_videos_and_bad_server_do_not_stop_the_dag(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    write_video(src / "good.mp4", duration=2.0)
    write_video(src / "silent.mp4", duration=1.5, audio=False)
    write_video(src / "webm.webm", duration=1.2, vcodec="libvpx", acodec="libopus")
    write_video(src / "audio_only.mp4", duration=1.0, video=False)
    good = (src / "good.mp4").read_bytes()
    routes = {  # video id -> (route, expected: "ok" or a piece of the failure reason)
        "101": (serve_bytes(good), "ok"),
        "102": (first_then(serve_status(500), serve_bytes(good)), "ok"),     # retried
        "103": (first_then(drop_midway(good), serve_bytes(good)), "ok"),     # resumed
        "104": (serve_bytes((src / "silent.mp4").read_bytes()), "ok"),       # audio masked
        "105": (serve_bytes((src / "webm.webm").read_bytes(), "video/webm"), "ok"),
        "201": (serve_status(404), "404"),
        "202": (serve_status(200, b"<html><body>login</body></html>", "text/html"), "HTML"),
        "203": (serve_bytes(b""), "empty"),
        "204": (serve_bytes(bytes(range(256)) * 40), "not a readable media file"),
        "205": (serve_bytes((src / "audio_only.mp4").read_bytes()), "video"),
        "206": (serve_status(500), "500"),                                   # gives up
    }
    splits = {vid: ("train", "val", "test")[i % 3] for i, vid in enumerate(sorted(routes))}
    _release(tmp_path / "release", splits)
    (tmp_path / "c3kg.tsv").write_text("head\trelation\ttail\tweight\n看视频\tnext_entity\t电影\t1.0\n",
                                       encoding="utf-8")
    with loopback_server() as srv:
        for vid, (route, _) in routes.items():
            srv.routes[f"/v/{vid}"] = route
        (tmp_path / "urls.csv").write_text(
            "id,url\n" + "".join(f"{v},{srv.base}/v/{v}\n" for v in sorted(routes)), encoding="utf-8")
        cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text(encoding="utf-8"))
        cfg["release"] = {"source": "release", "dir": str(tmp_path / "release")}
        cfg["knowledge"]["c3kg"] = str(tmp_path / "c3kg.tsv")
        cfg["data"]["shard_size"] = 4
        cfg["media"]["source"] = {"kind": "csv", "csv": str(tmp_path / "urls.csv")}
        cfg["media"]["download"].update(retries=2, backoff_base_s=0.05, read_timeout_s=5,
                                        total_timeout_s=60)
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
        res = subprocess.run(
            [sys.executable, "-m", "snakemake", "results/media/report.tsv", "--cores", "2",
             "--directory", str(tmp_path), "--snakefile", str(ROOT / "Snakefile"),
             "--configfile", str(tmp_path / "config.yaml")],
            capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-5000:]

    results = tmp_path / "results"
    status = _read_status(results)
    assert sorted(status) == sorted(routes), "every video of the manifest has a status row"
    store = FeatureStore(sorted((results / "media").glob("s*.features.npz")))
    for vid, (_, want) in routes.items():
        row = status[vid]
        if want == "ok":
            assert row["status"] == "ok", (vid, row)
            assert len(store.frames(vid)) > 0, vid
        else:
            assert row["status"] == "failed" and want in row["reason"], (vid, row)
            assert len(store.frames(vid)) == 0, vid
    assert len(store.audio("104")) == 0 and len(store.audio("101")) > 0  # no audio: masked
    # the media report counts the same outcome
    report = (results / "media" / "report.tsv").read_text(encoding="utf-8")
    assert report.strip(), "empty media report"
    assert (results / "media" / "shards.tsv").read_text(encoding="utf-8").count("\n") >= 3
