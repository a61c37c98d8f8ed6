"""The media stage through Snakemake itself: a release whose videos are partly damaged, served
by a misbehaving HTTP server (``id,url`` CSV source). The DAG must finish, every good video
must have its features, and every bad one must be listed with a reason (issue: media at scale).
"""
import json

import pytest

from dag_helpers import media_retry, read_status, release_config, snakemake, write_config
from media_utils import (drop_midway, first_then, loopback_server, serve_bytes, serve_status,
                         truncated_video, write_video)
from tiktalk.media.store import FeatureStore


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
    with loopback_server() as srv:
        for vid, (route, _) in routes.items():
            srv.routes[f"/v/{vid}"] = route
        (tmp_path / "urls.csv").write_text(
            "id,url\n" + "".join(f"{v},{srv.base}/v/{v}\n" for v in sorted(routes)), encoding="utf-8")
        cfg = release_config(tmp_path, splits, {"kind": "csv", "csv": str(tmp_path / "urls.csv")},
                             shard_size=4)
        cfg["media"]["download"].update(retries=2, backoff_base_s=0.05, read_timeout_s=5,
                                        total_timeout_s=60,
                                        allow_private_hosts=True)   # the server is on 127.0.0.1
        write_config(tmp_path, cfg)
        res = snakemake(tmp_path, "results/media/report.tsv")
    assert res.returncode == 0, res.stderr[-5000:]

    results = tmp_path / "results"
    status = read_status(results)
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


def _jobs(stdout: str) -> dict[str, int]:
    counts = {}
    for line in stdout.split("job ", 1)[-1].splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
            counts[parts[0]] = int(parts[1])
    return counts


@pytest.mark.slow
def test_coverage_floor_stops_training_and_retry_recovers(tmp_path):
    """One video missing, one truncated (index first, body cut): the coverage report names
    them, the floor stops the DAG before the training, and once their sources work again
    `tiktalk media retry` makes the next run re-do exactly their two shards."""
    src = tmp_path / "videos"
    src.mkdir()
    ids = [f"v0{i}" for i in range(1, 7)]                 # shards of 2: s00000 .. s00002
    split_of = dict(zip(ids, ("train", "train", "val", "test", "train", "val")))
    for vid in ids:
        if vid == "v02":
            continue                                      # missing
        if vid == "v05":
            truncated_video(src / "v05.mp4", duration=6.0, fraction=0.3)
        else:
            write_video(src / f"{vid}.mp4", duration=2.0)
    write_config(tmp_path, release_config(tmp_path, split_of, {"kind": "local_dir", "root": str(src)},
                                          shard_size=2))

    res = snakemake(tmp_path, "results/models/maria/model.pt")
    assert res.returncode != 0
    log = res.stdout + res.stderr
    assert "Error in rule coverage_floor" in log, log[-5000:]
    assert "results/media/coverage.json" in log and "below media.min_coverage 0.95" in log
    assert "'fetch: resolve: no file vN{" in log and "truncated: file holds N s of N s" in log
    assert not (tmp_path / "results/models/maria/model.pt").exists()
    assert not (tmp_path / "results/logs/train_baseline/maria.log").exists()   # never started
    report = json.loads((tmp_path / "results/media/coverage.json").read_text())
    assert {s: (v["ok"], v["videos"]) for s, v in report["splits"].items()} == {
        "train": (1, 3), "val": (2, 2), "test": (1, 1)}       # v02 missing, v05 cut: both train
    status = read_status(tmp_path / "results")
    assert status["v02"]["reason"].startswith("fetch: resolve: no file")
    assert status["v05"]["reason"].startswith("fetch: download: truncated: file holds")

    # the sources work again; the retry re-runs exactly the two shards (dry run first)
    write_video(src / "v02.mp4", duration=2.0)
    write_video(src / "v05.mp4", duration=6.0)
    res = media_retry(tmp_path, dry_run=True)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "s00000: 1 failed video(s)" in res.stdout and "s00002: 1 failed video(s)" in res.stdout
    jobs = _jobs(res.stdout)
    assert jobs["fetch_shard"] == 2 and jobs["extract_shard"] == 2, res.stdout[-3000:]
    assert "shard=s00001" not in res.stdout
    res = media_retry(tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    status = read_status(tmp_path / "results")
    assert all(status[v]["status"] == "ok" for v in ids), status
    report = json.loads((tmp_path / "results/media/coverage.json").read_text())
    assert all(v["coverage"] == 1.0 for v in report["splits"].values())
    store = FeatureStore(sorted((tmp_path / "results/media").glob("s*.features.npz")))
    assert len(store.frames("v02")) > 0 and len(store.frames("v05")) > 0
