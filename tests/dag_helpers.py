"""Helpers of the tests that run the real DAG on a small release of their own
(test_media_dag, test_failures_dag): the release, its config, Snakemake and ``tiktalk media
retry`` runs in the test's directory, and the media stage's status tables."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
C3KG = "head\trelation\ttail\tweight\n看视频\tnext_entity\t电影\t1.0\n"   # one knowledge row


def write_release(dirpath: Path, split_of: dict[str, str]) -> None:
    """A release (``{split}.json``) with one dialogue per video of ``split_of`` (video -> split):
    one context turn, the response (train) or five references (val, test)."""
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


def release_config(tmp_path: Path, split_of: dict[str, str], media_source: dict,
                   shard_size: int) -> dict:
    """The demo config (config/config.yaml) turned to a release of its own under ``tmp_path``:
    the release of ``split_of`` (:func:`write_release`), a one-row C3KG, ``shard_size`` videos
    per shard and ``media_source`` as the media source. Writes the release and the C3KG, not
    the config (the test edits it first: :func:`write_config`)."""
    write_release(tmp_path / "release", split_of)
    (tmp_path / "c3kg.tsv").write_text(C3KG, encoding="utf-8")
    cfg = yaml.safe_load((ROOT / "config/config.yaml").read_text(encoding="utf-8"))
    cfg["release"] = {"source": "release", "dir": str(tmp_path / "release")}
    cfg.pop("paper_tables", None)   # its demo CLIP exists for the demo release only
    cfg["knowledge"]["c3kg"] = str(tmp_path / "c3kg.tsv")
    cfg["data"]["shard_size"] = shard_size
    cfg["media"]["source"] = media_source
    return cfg


def write_config(tmp_path: Path, cfg: dict) -> None:
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")


def snakemake(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """The repository's Snakefile on ``tmp_path/config.yaml``, run in ``tmp_path`` on 2 cores."""
    return subprocess.run(
        [sys.executable, "-m", "snakemake", *args, "--cores", "2", "--directory", str(tmp_path),
         "--snakefile", str(ROOT / "Snakefile"), "--configfile", str(tmp_path / "config.yaml")],
        capture_output=True, text=True, timeout=900)


def media_retry(tmp_path: Path, *, dry_run: bool = False) -> subprocess.CompletedProcess:
    """``tiktalk media retry`` of the failed videos in ``tmp_path/results``, then Snakemake up
    to the coverage gate (``results/media/coverage.ok``)."""
    return subprocess.run(
        [sys.executable, "-m", "tiktalk.cli", "media", "retry", "--results", "results",
         *(["--dry-run"] if dry_run else []), "--", "results/media/coverage.ok", "--cores", "2",
         "--snakefile", str(ROOT / "Snakefile"), "--configfile", "config.yaml"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600 if dry_run else 900)


def read_status(results: Path) -> dict[str, dict]:
    """video id -> its row of the shards' status tables (``results/media/s*.status.tsv``)."""
    rows = {}
    for path in sorted((results / "media").glob("s*.status.tsv")):
        with open(path, encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                assert row["video_id"] not in rows, f"{row['video_id']} in two shards"
                rows[row["video_id"]] = row
    return rows
