"""The coverage floor (rules media_coverage + coverage_floor): per-split shares, top reasons,
the error that stops feature-reading trainings."""

from __future__ import annotations

import json

import pytest

from tiktalk.data.manifest import manifest_from_ids, write_manifest
from tiktalk.media.coverage import CoverageError, check_coverage, reason_kind, write_coverage
from tiktalk.media.tables import status_row, write_status

SPLIT = {"a1": "train", "a2": "train", "a3": "train", "a4": "train", "b1": "val", "b2": "val",
         "c1": "test"}
FAILED = {"a2": "fetch: download: HTTP 404 Not Found",
          "a3": "decode: truncated: decoded 4.1 s of 30.0 s",
          "b2": "decode: truncated: decoded 2.0 s of 12.5 s"}


@pytest.fixture
def media(tmp_path):
    manifest = tmp_path / "videos.tsv"
    write_manifest(manifest_from_ids(SPLIT, SPLIT, 4), manifest)        # shards of 4 ids
    rows = [status_row(v, FAILED.get(v, "")) for v in sorted(SPLIT)]
    write_status(tmp_path / "s00000.status.tsv", rows[:4])
    write_status(tmp_path / "s00001.status.tsv", rows[4:])
    return manifest, [tmp_path / "s00000.status.tsv", tmp_path / "s00001.status.tsv"]


def test_shares_per_split_and_top_reasons(media, tmp_path):
    manifest, status = media
    report = write_coverage(status, manifest, tmp_path / "coverage.json")
    assert json.loads((tmp_path / "coverage.json").read_text()) == report
    s = report["splits"]
    # train: a1, a4 ok of a1..a4; val: b1 of b1, b2; test: c1
    assert (s["train"]["ok"], s["train"]["videos"], s["train"]["coverage"]) == (2, 4, 0.5)
    assert (s["val"]["ok"], s["val"]["videos"], s["val"]["coverage"]) == (1, 2, 0.5)
    assert (s["test"]["ok"], s["test"]["videos"], s["test"]["coverage"]) == (1, 1, 1.0)
    # the two truncated videos count as one kind of reason, first (2 videos)
    assert report["top_failure_reasons"][0] == {
        "reason": "decode: truncated: decoded N s of N s", "videos": 2, "examples": ["a3", "b2"]}
    assert report["top_failure_reasons"][1]["reason"] == "fetch: download: HTTP N Not Found"


def test_below_the_floor_the_error_names_the_report_and_reasons(media, tmp_path):
    manifest, status = media
    path, ok = tmp_path / "coverage.json", tmp_path / "coverage.ok"
    write_coverage(status, manifest, path)
    with pytest.raises(CoverageError) as err:
        check_coverage(path, 0.95, ok)
    assert not ok.exists()
    msg = str(err.value)
    assert "below media.min_coverage 0.95: train 0.500 (2 of 4 videos have features)" in msg
    assert "val 0.500 (1 of 2" in msg and "test" not in msg.split("Report:")[0]
    assert f"Report: {path}" in msg
    assert "2 x 'decode: truncated: decoded N s of N s' (e.g. a3, b2)" in msg
    assert "tiktalk media retry" in msg
    # at a floor every split reaches, the check passes and writes the gate file
    check_coverage(path, 0.5, ok)
    assert ok.read_text().splitlines()[1:] == ["train\t2/4\t0.5", "val\t1/2\t0.5", "test\t1/1\t1.0"]
    with pytest.raises(ValueError, match="min_coverage"):
        check_coverage(path, 1.5)


def test_every_manifest_video_needs_a_status(media, tmp_path):
    manifest, status = media
    with pytest.raises(ValueError, match=r"3 video\(s\) of .*videos.tsv have no media status row"):
        write_coverage(status[:1], manifest, tmp_path / "c.json")
    old = tmp_path / "old.tsv"
    old.write_text("video_id\tstatus\treason\tn_frames\tn_audio_frames\tduration\n")
    with pytest.raises(ValueError, match="old.tsv: not a media status table .version 2"):
        write_coverage([old], manifest, tmp_path / "c.json")


def test_reason_kind():
    assert reason_kind("download: HTTP 503 (gave up after 5 attempts)") == "download: HTTP N (gave up after N attempts)"
    assert reason_kind("fetch: resolve: no file x in /d") == "fetch: resolve: no file x in /d"
