"""DAG-level checks by dry-run: the demo DAG builds, config errors name the bad key, and the
number of jobs grows with shards, not with videos (38,703-video manifest)."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tiktalk.data.build import manifest_from_ids, write_manifest

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def snakemake(*args, cwd=ROOT, timeout=300):
    return subprocess.run(SNAKEMAKE + list(args), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def job_counts(stdout: str) -> dict[str, int]:
    counts = {}
    table = stdout.split("job ", 1)[1] if "job " in stdout else ""
    for line in table.splitlines():
        m = re.fullmatch(r"(\w+)\s+(\d+)", line.strip())
        if m and m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


def write_config(tmp_path, cfg) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True))
    return path


def demo_config():
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def test_demo_dag_dry_run_builds(tmp_path):
    res = snakemake("-n", "--cores", "2", "--directory", str(tmp_path), "--snakefile",
                    str(ROOT / "Snakefile"), "--configfile", str(ROOT / "config/config.yaml"))
    assert res.returncode == 0, res.stderr[-3000:]
    counts = job_counts(res.stdout)
    n_baselines = len(demo_config()["baselines"])
    # one scoring job per evaluated split scores every baseline (one METEOR JVM)
    assert counts["demo_data"] == 1 and counts["score"] == len(demo_config()["evaluation"]["splits"])
    assert counts["predict"] == n_baselines
    # baselines that read media features join the DAG after the manifest checkpoint
    assert 1 <= counts["train_baseline"] <= n_baselines


@pytest.mark.parametrize("mutate, needle", [
    (lambda c: c.update(bogus_key=1), "bogus_key"),
    (lambda c: c["data"].update(shard_size=0), "shard_size"),
    (lambda c: c["baselines"]["maria"].update(label="Not a row"), "Not a row"),
    (lambda c: c["baselines"]["maria"]["params"]["train"].update(epochz=3), "epochz"),
])
def test_bad_config_fails_naming_the_key(tmp_path, mutate, needle):
    cfg = demo_config()
    mutate(cfg)
    res = snakemake("-n", "--cores", "1", "--directory", str(tmp_path), "--snakefile",
                    str(ROOT / "Snakefile"), "--configfile", str(write_config(tmp_path, cfg)))
    assert res.returncode != 0
    assert needle in res.stdout + res.stderr


def test_job_count_scales_with_shards_not_videos(tmp_path):
    """A 38,703-video TikTalk-sized manifest: jobs = shards x media stages + fixed rest."""
    n_videos, shard_size = 38_703, 256
    ids = [str(7_000_000_000_000_000_000 + i) for i in range(n_videos)]
    split_of = {v: ("test" if i < 2000 else "val" if i < 3000 else "train")
                for i, v in enumerate(ids)}
    res_dir = tmp_path / "results" / "data"
    res_dir.mkdir(parents=True)
    release = tmp_path / "release"
    release.mkdir()
    for split in ("train", "val", "test"):
        (release / f"{split}.json").write_text("{}")
    for split in ("train", "val", "test"):
        (res_dir / f"{split}.jsonl").write_text("")
        if split != "train":
            (res_dir / f"{split}_references.jsonl").write_text("")
    write_manifest(manifest_from_ids(ids, split_of, shard_size), res_dir / "videos.tsv")
    cfg = demo_config()
    cfg["release"] = {"source": "release", "dir": str(release)}
    cfg["data"]["shard_size"] = shard_size
    cfg["knowledge"]["c3kg"] = str(tmp_path / "c3kg.tsv")
    (tmp_path / "c3kg.tsv").write_text("head\trelation\ttail\tweight\n")
    # the pre-made tables must look up to date relative to the package code
    for p in list(res_dir.iterdir()) + list(release.iterdir()) + [tmp_path / "c3kg.tsv"]:
        os.utime(p, None)
    res = snakemake("-n", "--cores", "2", "--directory", str(tmp_path), "--snakefile",
                    str(ROOT / "Snakefile"), "--configfile", str(write_config(tmp_path, cfg)),
                    timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    counts = job_counts(res.stdout)
    n_shards = -(-n_videos // shard_size)
    assert n_shards == 152
    assert counts["fetch_shard"] == n_shards
    assert counts["extract_shard"] == n_shards
    assert counts["image_features_shard"] == n_shards
    media_jobs = sum(counts.get(r, 0) for r in ("fetch_shard", "extract_shard",
                                               "image_features_shard"))
    assert media_jobs == 3 * n_shards
    assert sum(counts.values()) < 3 * n_shards + 60, counts


def test_paper_config_validates():
    from snakemake.utils import validate

    for name in ("config.yaml", "tiktalk.yaml"):
        cfg = yaml.safe_load((ROOT / "config" / name).read_text())
        validate(cfg, str(ROOT / "config" / "schema.yaml"))
    paper = yaml.safe_load((ROOT / "config" / "tiktalk.yaml").read_text())
    maria = paper["baselines"]["maria"]["params"]
    assert maria["model"]["max_frames"] == 50 and maria["model"]["max_text_len"] == 180
    assert maria["train"]["lr"] == 3e-5 and maria["train"]["epochs"] == 20
    assert paper["media"]["extract"]["backbone"] == "resnet101"


def test_snakemake_lint_is_clean():
    res = snakemake("--lint")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "Congratulations" in res.stdout + res.stderr, res.stdout[-3000:]


def _reversed_keys(value):
    if isinstance(value, dict):
        return {k: _reversed_keys(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reversed_keys(v) for v in value]
    return value


def test_key_order_of_the_config_is_not_a_change(tmp_path):
    """The same config with every mapping's keys in another order (an editor, yaml.safe_dump,
    a merged --configfile) schedules nothing; a changed value still re-runs its stage."""
    cfg = demo_config()
    first = write_config(tmp_path, cfg)
    target = "results/data/train.jsonl"
    # the target goes first: --configfile takes every path that follows it
    args = [target, "--cores", "2", "--directory", str(tmp_path), "--snakefile",
            str(ROOT / "Snakefile")]
    res = snakemake(*args, "--configfile", str(first))
    assert res.returncode == 0, res.stderr[-3000:]

    (tmp_path / "reordered.yaml").write_text(
        yaml.safe_dump(_reversed_keys(cfg), allow_unicode=True, sort_keys=False))
    res = snakemake(*args, "-n", "--configfile", str(tmp_path / "reordered.yaml"))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Nothing to be done" in res.stdout + res.stderr, res.stdout[-3000:]

    cfg["demo"]["dialogues_per_video"]["train"] += 1
    res = snakemake(*args, "-n", "--configfile", str(write_config(tmp_path, cfg)))
    assert res.returncode == 0, res.stderr[-3000:]
    assert job_counts(res.stdout) == {"demo_data": 1, "build_split": 1}, res.stdout[-3000:]
    assert "Params have changed" in res.stdout


def job_blocks(stdout: str) -> list[dict]:
    """Each job of a dry-run listing as {"rule", "wildcards", "priority"} (0 when not shown)."""
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", stdout):
        head = re.match(r"(?:local)?rule (\w+):", block)
        if not head:
            continue
        wc = re.search(r"^\s+wildcards: (.*)$", block, re.M)
        prio = re.search(r"^\s+priority: (-?\d+)$", block, re.M)
        jobs.append({"rule": head.group(1), "wildcards": wc.group(1) if wc else "",
                     "priority": int(prio.group(1)) if prio else 0})
    return jobs


def test_media_jobs_first_then_longest_trainings(tmp_path):
    """Media jobs gate the slowest trainings, so they outrank everything; each training job
    carries its baseline's `priority` (the demo ranks the knowledge rows highest)."""
    cfg = demo_config()
    cfgfile = str(write_config(tmp_path, cfg))
    args = ["--cores", "2", "--directory", str(tmp_path), "--snakefile", str(ROOT / "Snakefile"),
            "--configfile", cfgfile]
    res = snakemake("results/data/videos.tsv", *args)  # the checkpoint that adds media jobs
    assert res.returncode == 0, res.stderr[-3000:]
    res = snakemake("-n", *args)
    assert res.returncode == 0, res.stderr[-3000:]
    jobs = job_blocks(res.stdout)
    media = [j for j in jobs if j["rule"] in ("fetch_shard", "extract_shard", "media_coverage",
                                               "coverage_floor")]
    shard_jobs = [j for j in media if j["rule"] in ("fetch_shard", "extract_shard")]
    # one decode job per shard feeds every encoder; then the coverage report and its floor
    assert len(shard_jobs) == 2 * len({j["wildcards"] for j in shard_jobs}) > 0
    assert len(media) == len(shard_jobs) + 2
    trains = {j["wildcards"].removeprefix("baseline="): j["priority"]
              for j in jobs if j["rule"] == "train_baseline"}
    assert sorted(trains) == sorted(cfg["baselines"])
    assert trains == {b: c.get("priority", 0) for b, c in cfg["baselines"].items()}
    top = max(j["priority"] for j in jobs if j not in media)
    assert all(j["priority"] > top for j in media), media
    assert trains["maria_c3kg"] > trains["text"]
