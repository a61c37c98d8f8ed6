"""A reduced demo DAG on a real one-node SLURM cluster, checked against a local run (slow).

The cluster (tests/slurm_cluster.py, docs/slurm.md) is munged + slurmctld + slurmd on this
machine with one fake GPU (gres ``File=/dev/null``). The workflow runs with a profile derived
from slurm/config.yaml, changed only where this node cannot honour it (no V100 type, one GPU,
a few CPUs, 20 GB) or where the plugin needs help without accounting (``squeue`` status
queries). The same reduced config also runs locally (``--cores 2``); the outputs must be
identical: training and decoding are seeded and run on the CPU in both.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from slurm_cluster import MARKER, SLURM_CONF, LocalSlurm, ensure_installed

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow

# at least one baseline with media features (maria) and one with knowledge (maria_c3kg)
KEEP = ("maria", "text", "dialogpt", "maria_c3kg")
OVERRIDE = {
    "demo": {"n_videos": {"train": 24, "val": 4, "test": 8}},
    # enough Maria epochs that decoding is not one constant reply (a weak equality check)
    "baselines": {b: {"params": {"train": {"epochs": 2 if b == "dialogpt" else 8}}}
                  for b in KEEP},
}
GPU_RULES = ("extract_shard", "retrieve_knowledge", "train_baseline",
             "predict")
# all: no output, nothing to run; fetch_shard: where the network is (media.fetch_on_login_node);
# media_coverage / coverage_floor: two small table reads
LOCAL_RULES = {"all", "fetch_shard", "media_coverage", "coverage_floor"}
COMPARED = ("metrics", "predictions", "tables", "media/report.tsv", "media/shards.tsv")


def _copy_repo(dst: Path) -> Path:
    ignore = shutil.ignore_patterns(".venv", ".git", "results", ".snakemake", "__pycache__",
                                    "*.egg-info", ".pytest_cache")
    shutil.copytree(ROOT, dst, ignore=ignore)
    (dst / "results").mkdir(exist_ok=True)
    # `--configfile config/config.yaml reduced.yaml` merges the overlay into the demo config
    # (dicts key by key), so the baselines left out are dropped from the copy's config itself;
    # jobs inside SLURM read the same files, so their DAG agrees with the submitting one.
    cfg = yaml.safe_load((dst / "config/config.yaml").read_text(encoding="utf-8"))
    cfg["baselines"] = {b: cfg["baselines"][b] for b in KEEP}
    (dst / "config/config.yaml").write_text(
        yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    (dst / "reduced.yaml").write_text(yaml.safe_dump(OVERRIDE), encoding="utf-8")
    return dst


def _test_profile(repo: Path, cpus: int) -> Path:
    """slurm/config.yaml, fitted to the one-node cluster; everything else kept as it is."""
    prof = yaml.safe_load((repo / "slurm/config.yaml").read_text())
    assert prof["executor"] == "slurm"
    prof.pop("software-deployment-method", None)   # no conda here: the test venv has every package
    prof.pop("configfile", None)                   # the reduced demo, given on the command line
    prof.update({
        "jobs": 4,
        "slurm-status-command": "squeue",          # no accounting: sacct would wait forever
        "slurm-init-seconds-before-status-checks": 2,
        "seconds-between-status-checks": 2,
        "slurm-no-account": True,                  # no sacctmgr/sshare to validate one
        "slurm-keep-successful-logs": True,        # checked below, then deleted with the copy
    })
    small = "1500 * attempt"                       # the node has 20 GB
    # a GPU job leaves CPUs to a CPU job beside it (all GPU jobs share the one fake GPU);
    # results do not depend on it: torch sizes its thread pool from the machine, not SLURM
    cap = max(1, cpus // 2)
    prof["default-resources"]["mem_mb"] = small
    for rule, res in prof["set-resources"].items():
        res["mem_mb"] = small
        if "gpu" in res:
            res.pop("gpu_model", None)             # the fake gres has no type
            res["gpu"] = 1                         # one fake GPU; train_baseline trains in-process
        if "cpus_per_gpu" in res:
            res["cpus_per_gpu"] = min(res["cpus_per_gpu"], cap)
    prof["set-threads"] = {r: min(t, cap) for r, t in prof["set-threads"].items()}
    out = repo / "slurm-local"
    out.mkdir()
    (out / "config.yaml").write_text(yaml.safe_dump(prof, sort_keys=False))
    return out


def _env() -> dict:
    env = dict(os.environ)
    venv_bin = ROOT / ".venv" / "bin"
    bindir = venv_bin if venv_bin.is_dir() else Path(sys.executable).parent
    # sbatch --export=ALL hands PATH on: the jobs find this venv's python and snakemake
    env["PATH"] = os.pathsep.join([str(bindir), env.get("PATH", "")])
    env["TIKTALK_SLURM_PARTITION"] = "tiktalk"
    env.pop("TIKTALK_SLURM_ACCOUNT", None)
    return env


def _smk(repo: Path, *args) -> subprocess.Popen:
    log = open(repo / "run.log", "w")
    return subprocess.Popen([sys.executable, "-m", "snakemake", *args], cwd=repo, env=_env(),
                            stdout=log, stderr=subprocess.STDOUT, text=True)


def _wait(proc: subprocess.Popen, repo: Path, timeout: float) -> str:
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
        proc.wait(timeout=60)
    return (repo / "run.log").read_text(errors="replace")


def _jobs(log: str) -> dict[int, tuple[str, bool]]:
    """jobid -> (rule, ran locally) from Snakemake's job headers."""
    jobs, head = {}, None
    for line in log.splitlines():
        m = re.fullmatch(r"(local)?(?:rule|checkpoint) (\w+):", line)
        if m:
            head = (m.group(2), bool(m.group(1)))
            continue
        m = re.fullmatch(r"\s+jobid: (\d+)", line)
        if m and head:
            jobs[int(m.group(1))] = head
            head = None
    return jobs


def _finished(log: str) -> Counter:
    return Counter(re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", log))


def _files(results: Path) -> dict[str, Path]:
    out = {}
    for name in COMPARED:
        p = results / name
        for f in ([p] if p.is_file() else sorted(p.rglob("*"))):
            if f.is_file():
                out[str(f.relative_to(results))] = f
    return out


@pytest.fixture(scope="module")
def cluster():
    why = ensure_installed()
    if why:
        pytest.skip(why)
    if os.geteuid() != 0:
        pytest.skip("starting munged/slurmctld/slurmd needs root")
    if SLURM_CONF.exists() and MARKER not in SLURM_CONF.read_text(errors="replace"):
        pytest.skip(f"{SLURM_CONF} belongs to a configured SLURM installation; not touching it")
    c = LocalSlurm.create()
    try:
        yield c
    finally:
        c.stop()
        assert not c.running_daemons(), f"still running after stop: {c.running_daemons()}"
        assert not SLURM_CONF.exists(), f"{SLURM_CONF} left behind"


def test_reduced_demo_on_slurm_equals_local_run(cluster, tmp_path):
    t0 = time.monotonic()
    slurm_repo = _copy_repo(tmp_path / "slurm")
    local_repo = _copy_repo(tmp_path / "local")
    profile = _test_profile(slurm_repo, cluster.cpus)

    # the local run works alongside the SLURM one (which mostly waits on status checks)
    local = _smk(local_repo, "--cores", "2", "--configfile", "config/config.yaml", "reduced.yaml")
    t_slurm = time.monotonic()
    slurm = _smk(slurm_repo, "--profile", profile.name, "all", "--configfile", "config/config.yaml",
                 "reduced.yaml")
    slurm_log = _wait(slurm, slurm_repo, 2400)
    t_slurm = time.monotonic() - t_slurm
    local_log = _wait(local, local_repo, 1200)
    print(f"\nSLURM run {t_slurm:.0f} s; whole test {time.monotonic() - t0:.0f} s so far")

    assert slurm.returncode == 0 and "steps (100%) done" in slurm_log, \
        slurm_log[-6000:] + cluster.diagnostics()
    assert local.returncode == 0 and "steps (100%) done" in local_log, local_log[-6000:]
    assert not cluster.jobs(), f"jobs left on the cluster: {cluster.jobs()}"

    # every job but `all` went through sbatch, exactly once (no retries), each its own id
    jobs = _jobs(slurm_log)
    submitted = {int(j): (int(s), Path(p)) for j, s, p in re.findall(
        r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: (.+?)\)\.", slurm_log)}
    n_submissions = len(re.findall(r"has been submitted with SLURM jobid", slurm_log))
    assert n_submissions == len(submitted), "a job was submitted more than once"
    assert {r for r, local in jobs.values() if local} <= LOCAL_RULES, jobs
    remote = {j for j, (r, _) in jobs.items() if r not in LOCAL_RULES}
    assert set(submitted) == remote, (sorted(set(submitted) ^ remote), slurm_log[-4000:])
    slurm_ids = [s for s, _ in submitted.values()]
    assert len(set(slurm_ids)) == len(slurm_ids)
    # ... and the same jobs as the local run: rule by rule (checkpoint included)
    per_rule = Counter(jobs[j][0] for j in submitted)
    local_per_rule = _finished(local_log)
    assert per_rule == Counter({r: n for r, n in local_per_rule.items() if r not in LOCAL_RULES})
    assert _finished(slurm_log) == local_per_rule
    assert per_rule["train_baseline"] == len(KEEP) and per_rule["extract_shard"] == 2

    # slurmd ran each one: its output file exists, and slurmctld saw it end with status 0
    for jobid, (sid, path) in submitted.items():
        text = (slurm_repo / path).read_text(errors="replace")
        rule = jobs[jobid][0]
        assert re.search(rf"Finished jobid: \d+ \(Rule: {rule}\)", text), (path, text[-2000:])
    ctld = (cluster.base / "slurmctld.log").read_text(errors="replace")
    done = {int(i) for i in re.findall(r"_job_complete: JobId=(\d+) WEXITSTATUS 0", ctld)}
    assert set(slurm_ids) <= done, sorted(set(slurm_ids) - done)

    # GPU rules got their (fake) GPU; training stayed in-process (gpu=1, no torchrun)
    for b in KEEP:
        train_log = (slurm_repo / f"results/logs/train_baseline/{b}.log").read_text()
        assert "on 1 GPU(s)" in train_log and "launching DDP" not in train_log, train_log[-2000:]

    # the same results as the local run, bit for bit
    got, want = _files(slurm_repo / "results"), _files(local_repo / "results")
    assert sorted(got) == sorted(want)
    assert len([k for k in got if k.startswith("metrics/")]) == len(KEEP)
    for name in sorted(want):
        if name.endswith(".json"):
            assert json.loads(got[name].read_text()) == json.loads(want[name].read_text()), name
        else:
            assert got[name].read_bytes() == want[name].read_bytes(), name
    # and the comparison has teeth: the replies are not one constant string per model
    for b in KEEP:
        replies = {json.loads(l)["response"] for l in
                   (local_repo / f"results/predictions/{b}/test.jsonl").read_text().splitlines()}
        assert len(replies) > 1, (b, replies)
    print(f"whole test {time.monotonic() - t0:.0f} s")
