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

from tiktalk.data.manifest import manifest_from_ids, write_manifest

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
    # one scoring job per baseline and evaluated split (a failed baseline blocks only its own)
    assert counts["demo_data"] == 1
    assert counts["score"] == n_baselines * len(demo_config()["evaluation"]["splits"])
    assert counts["predict"] == n_baselines
    # baselines that read media features join the DAG after the manifest checkpoint
    assert 1 <= counts["train_baseline"] <= n_baselines


@pytest.mark.parametrize("mutate, needle", [
    (lambda c: c.update(bogus_key=1), "bogus_key"),
    (lambda c: c["data"].update(shard_size=0), "shard_size"),
    (lambda c: c["baselines"]["maria"].update(label="Maria-C3KG"), "Maria-C3KG"),   # a near miss
    (lambda c: c["baselines"]["maria"]["params"]["train"].update(epochz=3), "epochz"),
])
def test_bad_config_fails_naming_the_key(tmp_path, mutate, needle):
    cfg = demo_config()
    mutate(cfg)
    res = snakemake("-n", "--cores", "1", "--directory", str(tmp_path), "--snakefile",
                    str(ROOT / "Snakefile"), "--configfile", str(write_config(tmp_path, cfg)))
    assert res.returncode != 0
    assert needle in res.stdout + res.stderr


def paper_scale_workdir(tmp_path: Path, n_videos: int = 38_703) -> Path:
    """A working directory where the paper config's data stage is done for a TikTalk-sized
    release (35,703 / 1,000 / 2,000 videos): release files, dialogue tables, the manifest
    checkpoint and a passing media coverage report exist, so a dry-run shows every job."""
    ids = [str(7_000_000_000_000_000_000 + i) for i in range(n_videos)]
    split_of = {v: ("test" if i < 2000 else "val" if i < 3000 else "train")
                for i, v in enumerate(ids)}
    shard_size = yaml.safe_load((ROOT / "config/tiktalk.yaml").read_text())["data"]["shard_size"]
    res_dir = tmp_path / "results" / "data"
    res_dir.mkdir(parents=True)
    release = tmp_path / "data" / "tiktalk"
    release.mkdir(parents=True)
    (tmp_path / "data" / "c3kg").mkdir()
    (tmp_path / "data" / "c3kg" / "c3kg.tsv").write_text("head\trelation\ttail\tweight\n")
    for split in ("train", "val", "test"):
        (release / f"{split}.json").write_text("{}")
        (res_dir / f"{split}.jsonl").write_text("")
        (res_dir / f"{split}.release.json").write_text("{}")
        if split != "train":
            (res_dir / f"{split}_references.jsonl").write_text("")
    write_manifest(manifest_from_ids(ids, split_of, shard_size), res_dir / "videos.tsv")
    from tiktalk.media.coverage import COVERAGE_VERSION

    (tmp_path / "results" / "media").mkdir()
    (tmp_path / "results" / "media" / "coverage.json").write_text(
        json.dumps({"version": COVERAGE_VERSION, "passed": True}))
    # the pre-made tables must look up to date relative to the package code
    for p in tmp_path.rglob("*"):
        if p.is_file():
            os.utime(p, None)
    return tmp_path


@pytest.fixture(scope="module")
def paper_scale_dry_run(tmp_path_factory):
    workdir = paper_scale_workdir(tmp_path_factory.mktemp("paper_scale"))
    res = snakemake("-n", "--cores", "2", "--directory", str(workdir), "--snakefile",
                    str(ROOT / "Snakefile"), "--configfile", str(ROOT / "config/tiktalk.yaml"),
                    timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


def test_paper_config_at_paper_scale_jobs_grow_with_shards(paper_scale_dry_run):
    """The paper config on a 38,703-video manifest: media jobs = shards x stages, one job per
    weight file to fetch (none is there yet), one verification per artifact, and the rest a
    fixed number of jobs (the README quotes this dry-run's time and job count)."""
    counts = job_counts(paper_scale_dry_run)
    paper = yaml.safe_load((ROOT / "config/tiktalk.yaml").read_text())
    n_shards = -(-38_703 // paper["data"]["shard_size"])
    assert n_shards == 152
    assert counts["fetch_shard"] == counts["extract_shard"] == n_shards
    artifacts = paper["weights"]["artifacts"]
    assert counts["verify_weight"] == len(artifacts) and counts["fetch_weights"] == 1
    assert counts["fetch_weight"] == sum(len(a["files"]) for a in artifacts.values())
    n_baselines = len(paper["baselines"])
    assert counts["train_baseline"] == n_baselines
    assert counts["predict"] == n_baselines * len(paper["evaluation"]["splits"])
    fixed = sum(counts.values()) - 2 * n_shards - counts["fetch_weight"]
    assert fixed < 120, counts


SLURM_COMMANDS = ("sbatch", "sacct", "squeue", "scancel", "sinfo", "scontrol", "sacctmgr", "srun")


@pytest.mark.parametrize("on_login_node", [True, False])
def test_fetch_runs_where_the_network_is(tmp_path, on_login_node):
    """media.fetch_on_login_node: on a cluster fetch_shard is a localrule (it runs on the login
    node, which has the network) or, switched off, a job submitted like the others. Run with
    the SLURM executor against stand-in SLURM commands that refuse everything (so no real
    cluster on this machine is ever used): the localrule runs, the other fails to submit."""
    pytest.importorskip("snakemake_executor_plugin_slurm")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    for name in SLURM_COMMANDS:
        (fake_bin / name).write_text(f"#!/bin/sh\necho '{name}: no SLURM in this test' >&2\nexit 1\n")
        (fake_bin / name).chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env["PATH"] = f"{fake_bin}{os.pathsep}{env.get('PATH', '')}"
    workdir = paper_scale_workdir(tmp_path / "work", n_videos=40)
    (tmp_path / "videos").mkdir()
    cfg = yaml.safe_load((ROOT / "config/tiktalk.yaml").read_text())
    cfg["media"]["source"] = {"kind": "local_dir", "root": str(tmp_path / "videos")}   # no network
    cfg["media"]["fetch_on_login_node"] = on_login_node
    res = subprocess.run(
        SNAKEMAKE + ["results/media/s00000/fetch.tsv", "--executor", "slurm", "--jobs", "1",
                     "--slurm-no-account", "--slurm-init-seconds-before-status-checks", "1",
                     "--seconds-between-status-checks", "1", "--directory", str(workdir),
                     "--snakefile", str(ROOT / "Snakefile"),
                     "--configfile", str(write_config(tmp_path, cfg))],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    log = res.stdout + res.stderr
    if on_login_node:
        assert res.returncode == 0 and "localrule fetch_shard:" in log, log[-3000:]
        assert (workdir / "results/media/s00000/fetch.tsv").exists()
    else:
        assert res.returncode != 0 and "localrule fetch_shard:" not in log
        assert re.search(r"^rule fetch_shard:", log, re.M) and "Job submission failed" in log, log[-3000:]
        assert not (workdir / "results/media/s00000/fetch.tsv").exists()


def weight_readers(dry_run: str) -> dict[str, set[str]]:
    """Artifact name -> the jobs (``rule[baseline]``) of a dry run that take its files as input."""
    readers: dict[str, set[str]] = {}
    for block in re.split(r"\n(?=(?:local)?(?:rule|checkpoint) \w+:)", dry_run):
        head = re.match(r"(?:local)?(?:rule|checkpoint) (\w+):", block)
        inputs = re.search(r"^\s+input: (.*)$", block, re.M)
        if not head or not inputs or head.group(1) in ("verify_weight", "fetch_weights"):
            continue
        baseline = re.search(r"^\s+wildcards: .*\bbaseline=(\w+)", block, re.M)
        job = head.group(1) + (f"[{baseline.group(1)}]" if baseline else "")
        for f in inputs.group(1).split(", "):
            if f.startswith("weights/") and f.count("/") >= 2 and "/.verified/" not in f:
                readers.setdefault(f.split("/")[1], set()).add(job)
    return readers


def test_each_weight_is_an_input_of_exactly_its_consumers(paper_scale_dry_run):
    """So replacing a weight file re-runs exactly the jobs that load it (mtime trigger)."""
    readers = weight_readers(paper_scale_dry_run)
    both = lambda *bs: {f"{r}[{b}]" for b in bs for r in ("train_baseline", "predict", "rank")}  # noqa: E731
    maria = ("maria", "maria_audio", "maria_c3kg", "text", "audio_text", "c3kg_text", "maria_audio_c3kg")
    assert readers == {
        "bert-base-chinese": both(*maria, "livebot"),
        "resnet101-imagenet": {"extract_shard"},
        "vggish": {"extract_shard"},
        # its vision tower (media) and its query tokens + Q-Former (the BLIP-2 rows)
        "blip2-opt-2.7b": {"extract_shard"} | both("blip2_img", "blip2_video"),
        "sbert-chinese": {"retrieve_knowledge", "table5"},   # Table 5: descriptions vs topics
        "gpt2-chitchat": both("dialogpt"),
        "chatglm-6b": both("chatglm", "blip2_img", "blip2_video"),
    }


def test_every_rule_that_loads_a_model_asks_the_profile_for_a_gpu(paper_scale_dry_run):
    """A job that loads pretrained weights (and every job of a rule that may) runs on a GPU
    node: without one, ChatGLM-6B ranking 2,728 x 100 candidates never finishes."""
    profile = yaml.safe_load((ROOT / "slurm/config.yaml").read_text(encoding="utf-8"))
    rules = {job.split("[")[0] for jobs in weight_readers(paper_scale_dry_run).values() for job in jobs}
    assert {"extract_shard", "train_baseline", "predict", "rank", "retrieve_knowledge", "table5"} <= rules
    without = sorted(r for r in rules if int((profile["set-resources"].get(r) or {}).get("gpu", 0)) < 1)
    assert not without, f"rules that load a model but ask the profile for no GPU: {without}"


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
