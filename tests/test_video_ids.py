"""One video-id pattern, in one place, honoured by every stage: the release check, the manifest
and the media fetch (config data.video_id_pattern, else tiktalk.formats.VIDEO_ID_PATTERN)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from media_utils import write_video
from tiktalk.formats import VIDEO_ID_PATTERN

ROOT = Path(__file__).resolve().parents[1]
LONG_ID = "v" * 150                      # allowed by the user's pattern below, not by the default
IDS = {"clip.001": "train", LONG_ID: "val", "Cam_2": "test"}


def test_the_default_is_defined_once():
    from tiktalk.data.release import DEFAULT_VIDEO_ID_PATTERN
    from tiktalk.media.ids import DEFAULT_ID_PATTERN
    from tiktalk.media.sources import DouyinApiResolver

    assert DEFAULT_VIDEO_ID_PATTERN is VIDEO_ID_PATTERN and DEFAULT_ID_PATTERN is VIDEO_ID_PATTERN
    assert DouyinApiResolver().id_pattern is VIDEO_ID_PATTERN
    for name in ("config.yaml", "tiktalk.yaml"):     # no second default in the shipped configs
        assert "video_id_pattern" not in yaml.safe_load((ROOT / "config" / name).read_text())["data"]


def test_the_release_check_matches_the_whole_id():
    from tiktalk.data.release import invalid_video_ids

    # a pattern without anchors still has to match the whole id (as the media stage does)
    assert invalid_video_ids(["123", "abc123", "123\n"], r"[0-9]+") == ["abc123", "123\n"]


def _release(root: Path) -> Path:
    rel = root / "release"
    rel.mkdir()
    for split in ("train", "val", "test"):
        data = {}
        for vid, s in IDS.items():
            if s == split:
                d = {"context": ["你看这个视频。"]}
                if split == "train":
                    d["response"] = "挺好看的。"
                else:
                    d["responses"] = ["好看。"] * 5
                data[vid] = {"dialogues": [d]}
        (rel / f"{split}.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return rel


def _snakemake(tmp_path: Path, cfg: dict, *targets: str) -> subprocess.CompletedProcess:
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "snakemake", *targets, "--cores", "1",
                           "--directory", str(tmp_path), "--snakefile", str(ROOT / "Snakefile"),
                           "--configfile", str(tmp_path / "config.yaml")],
                          capture_output=True, text=True, timeout=600)


@pytest.fixture
def setup(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    for vid in IDS:
        write_video(videos / f"{vid}.mp4", duration=1.0, audio=False)
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))
    cfg["release"] = {"source": "release", "dir": str(_release(tmp_path))}
    cfg.pop("paper_tables", None)       # its demo CLIP exists for the demo release only
    cfg["knowledge"]["c3kg"] = str(tmp_path / "c3kg.tsv")
    (tmp_path / "c3kg.tsv").write_text("head\trelation\ttail\tweight\n")
    cfg["media"]["source"] = {"kind": "local_dir", "root": str(videos)}
    return tmp_path, cfg


def test_a_users_pattern_reaches_the_manifest_and_the_fetch(setup):
    tmp_path, cfg = setup
    cfg["data"]["video_id_pattern"] = r"^[A-Za-z0-9_.-]{1,200}$"
    res = _snakemake(tmp_path, cfg, "results/media/s00000/fetch.tsv")   # after the manifest
    assert res.returncode == 0, res.stderr[-3000:]
    manifest = (tmp_path / "results/data/videos.tsv").read_text().splitlines()
    assert sorted(line.split("\t")[0] for line in manifest[1:]) == sorted(IDS)
    fetch = (tmp_path / "results/media/s00000/fetch.tsv").read_text().splitlines()[1:]
    assert sorted((r.split("\t")[0], r.split("\t")[1]) for r in fetch) == sorted((v, "ok") for v in IDS)


def test_without_a_pattern_every_stage_uses_the_default(setup):
    tmp_path, cfg = setup
    assert "video_id_pattern" not in cfg["data"]
    res = _snakemake(tmp_path, cfg, "results/data/val.jsonl")
    assert res.returncode != 0
    assert LONG_ID in res.stdout + res.stderr and VIDEO_ID_PATTERN in res.stdout + res.stderr
