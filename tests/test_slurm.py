"""The workflow on a real one-node SLURM cluster (slow), two runs on one cluster start:

* a reduced demo DAG, checked against a local run: the same jobs, identical outputs (training
  and decoding are seeded and run on the CPU in both);
* the rehearsal (config/rehearsal.yaml, tiny weights of the real classes from
  ``tiktalk weights make-rehearsal --with-data``, a release in the official layout without
  val.json, videos from a local directory): every job that loads pretrained weights recorded the
  sha256 of exactly the files in rehearsal/weights/ it declares, none fell back to random init,
  and Table 3 has every row.

The cluster (tests/slurm_cluster.py, docs/slurm.md) is munged + slurmctld + slurmd on this
machine with fake GPUs (gres ``File=/dev/null``, ``/dev/zero``: one per CPU). The workflow runs
with a profile derived from slurm/config.yaml, changed only where this node cannot honour it
(no V100 type, one GPU a job, a few CPUs, 20 GB), where the plugin needs help without accounting (``squeue`` status
queries), and without conda (none here: the jobs run in the test venv, the LLM rows under
.venv-llm through ``TIKTALK_PYTHON_LLM``, the non-conda mechanism of README "The LLM env").
"""
from __future__ import annotations

import hashlib
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
    # the annotation kits sample from the 8 test videos (16 dialogues)
    "human_eval": {"n_dialogues": 8, "context_sources": {"n_videos": 4}},
}
GPU_RULES = ("extract_shard", "retrieve_knowledge", "train_baseline",
             "predict")
# all: no output, nothing to run; fetch_shard: where the network is (media.fetch_on_login_node);
# media_coverage / coverage_floor: two small table reads
LOCAL_RULES = {"all", "fetch_shard", "media_coverage", "coverage_floor"}
COMPARED = ("metrics", "predictions", "tables", "media/report.tsv", "media/shards.tsv")
TIMING_TABLE = "tables/table7"       # minutes per epoch: compared without them


def _copy_tree(dst: Path) -> Path:
    anywhere = shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache")
    top = {".venv", ".venv-llm", ".git", ".snakemake", "results", "rehearsal", "weights"}

    def ignore(folder, names):       # the repo's own outputs and envs, not src/tiktalk/weights
        return set(anywhere(folder, names)) | (top & set(names) if Path(folder) == ROOT else set())

    shutil.copytree(ROOT, dst, ignore=ignore)
    (dst / "results").mkdir(exist_ok=True)
    return dst


def _copy_repo(dst: Path) -> Path:
    _copy_tree(dst)
    # `--configfile config/config.yaml reduced.yaml` merges the overlay into the demo config
    # (dicts key by key), so the baselines left out are dropped from the copy's config itself;
    # jobs inside SLURM read the same files, so their DAG agrees with the submitting one.
    cfg = yaml.safe_load((dst / "config/config.yaml").read_text(encoding="utf-8"))
    cfg["baselines"] = {b: cfg["baselines"][b] for b in KEEP}
    (dst / "config/config.yaml").write_text(
        yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    (dst / "reduced.yaml").write_text(yaml.safe_dump(OVERRIDE), encoding="utf-8")
    return dst


def _test_profile(repo: Path, cpus: int, keep_configfile: bool = False) -> Path:
    """slurm/config.yaml, fitted to the one-node cluster; everything else kept as it is."""
    prof = yaml.safe_load((repo / "slurm/config.yaml").read_text())
    assert prof["executor"] == "slurm"
    prof.pop("software-deployment-method", None)   # no conda here: the test venv has every package
    if not keep_configfile:
        prof.pop("configfile", None)               # the reduced demo, given on the command line
    prof.update({
        "jobs": 4,
        "slurm-status-command": "squeue",          # no accounting: sacct would wait forever
        "slurm-init-seconds-before-status-checks": 2,
        "seconds-between-status-checks": 2,
        "slurm-no-account": True,                  # no sacctmgr/sshare to validate one
        "slurm-keep-successful-logs": True,        # checked below, then deleted with the copy
    })
    small = "1500 * attempt"                       # the node has 20 GB
    # a GPU job leaves CPUs to another job beside it (the node has one fake GPU per CPU);
    # results do not depend on it: torch sizes its thread pool from the machine, not SLURM
    cap = max(1, cpus // 2)
    prof["default-resources"]["mem_mb"] = small
    for rule, res in prof["set-resources"].items():
        res["mem_mb"] = small
        if "gpu" in res:
            res.pop("gpu_model", None)             # the fake gres has no type
            res["gpu"] = 1                         # one fake GPU a job: training stays in-process
        if "cpus_per_gpu" in res:
            res["cpus_per_gpu"] = min(res["cpus_per_gpu"], cap)
    prof["set-threads"] = {r: min(t, cap) for r, t in prof["set-threads"].items()}
    out = repo / "slurm-local"
    out.mkdir()
    (out / "config.yaml").write_text(yaml.safe_dump(prof, sort_keys=False))
    return out


def _env(**extra) -> dict:
    env = dict(os.environ)
    venv_bin = ROOT / ".venv" / "bin"
    bindir = venv_bin if venv_bin.is_dir() else Path(sys.executable).parent
    # sbatch --export=ALL hands PATH on: the jobs find this venv's python and snakemake
    env["PATH"] = os.pathsep.join([str(bindir), env.get("PATH", "")])
    env["TIKTALK_SLURM_PARTITION"] = "tiktalk"
    env.pop("TIKTALK_SLURM_ACCOUNT", None)
    env.pop("TIKTALK_PYTHON_LLM", None)
    env.update(extra)
    return env


def _smk(repo: Path, *args, env: dict | None = None) -> subprocess.Popen:
    log = open(repo / "run.log", "w")
    return subprocess.Popen([sys.executable, "-m", "snakemake", *args], cwd=repo, env=env or _env(),
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
        if name.startswith(TIMING_TABLE):
            continue
        if name.endswith(".json"):
            assert json.loads(got[name].read_text()) == json.loads(want[name].read_text()), name
        else:
            assert got[name].read_bytes() == want[name].read_bytes(), name
    # Table 7 reports the trainings' own minutes per epoch: equal but for those
    import pandas as pd
    timed = [pd.read_csv(f[f"{TIMING_TABLE}.csv"]).drop(columns=["minutes", "increase_pct"])
             for f in (got, want)]
    pd.testing.assert_frame_equal(*timed)
    # and the comparison has teeth: the replies are not one constant string per model
    for b in KEEP:
        replies = {json.loads(l)["response"] for l in
                   (local_repo / f"results/predictions/{b}/test.jsonl").read_text().splitlines()}
        assert len(replies) > 1, (b, replies)
    print(f"whole test {time.monotonic() - t0:.0f} s")


# -- the rehearsal ----------------------------------------------------------------------------
REHEARSAL = "config/rehearsal.yaml"
# Table 3 and Table 5: with what they read, every rule that loads weights but `rank` runs (about
# half of the DAG, to keep CI short); TIKTALK_REHEARSAL_TARGETS=all runs the whole DAG (README)
TARGETS = os.environ.get("TIKTALK_REHEARSAL_TARGETS",
                         "results/tables/table3.csv results/tables/table5.csv").split()
# what each rule writes about the weights it loaded (tiktalk.io.provenance); predict and rank
# load the row's weights again and read its model.pt, which records them
PROVENANCE_RULES = ("extract_shard", "retrieve_knowledge", "train_baseline", "predict", "rank", "table5")
# the weights stage itself reads every file (it hashes them): not a consumer
WEIGHTS_RULES = {"fetch_weight", "verify_weight", "fetch_weights"}


def _headers(log: str) -> dict[int, dict]:
    """jobid -> {rule, local, input, output, wildcards} from Snakemake's job headers."""
    jobs, cur = {}, None
    for line in log.splitlines():
        m = re.fullmatch(r"(local)?(?:rule|checkpoint) (\w+):", line)
        if m:
            cur = {"rule": m.group(2), "local": bool(m.group(1)), "input": [], "output": [],
                   "wildcards": {}}
            continue
        if cur is None:
            continue
        m = re.fullmatch(r"\s+(input|output|wildcards|jobid): (.*)", line)
        if not m:
            if not line.startswith(" "):
                cur = None
            continue
        key, value = m.groups()
        if key == "jobid":
            jobs[int(value)] = cur
        elif key == "wildcards":
            cur["wildcards"] = dict(kv.split("=", 1) for kv in value.split(", "))
        else:
            cur[key] = value.split(", ")
    return jobs


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _expected_sha(path: Path) -> str:
    """A weight's sha256 computed here: a file's own; a directory's over the sorted lines
    ``<relative path>\\t<sha256>`` of its files (the documented fingerprint of a directory)."""
    if path.is_file():
        return _sha256(path)
    lines = "".join(f"{f.relative_to(path).as_posix()}\t{_sha256(f)}\n" for f in sorted(path.rglob("*"))
                    if f.is_file() and not any(p.startswith(".") for p in f.relative_to(path).parts))
    return hashlib.sha256(lines.encode()).hexdigest()


def _recorded(repo: Path, job: dict) -> list[dict]:
    """The provenance records a job wrote (or, for predict/rank, its row's model.pt holds)."""
    import numpy as np
    import torch

    rule, w = job["rule"], job["wildcards"]
    if rule == "extract_shard":
        out = []
        for f in job["output"]:
            if f.endswith(".npz"):
                with np.load(repo / f, allow_pickle=False) as z:
                    out.append(json.loads(str(z["provenance"])))
        return out
    if rule in ("retrieve_knowledge", "table5"):
        return [json.loads((repo / f).read_text()) for f in job["output"] if f.endswith("provenance.json")]
    model = repo / "results" / "models" / w["baseline"] / "model.pt"
    return [torch.load(model, map_location="cpu", weights_only=True)["provenance"]]


def check_rehearsal(repo: Path, log: str, cfg: dict) -> Counter:
    """The rehearsal's promises on a finished run (``repo``: its directory, ``log``: Snakemake's
    output); returns how many jobs of each rule had their weights checked. Also usable on a run
    made by hand: ``check_rehearsal(Path(dir), Path(dir, "run.log").read_text(), cfg)``."""
    jobs = _headers(log)
    root = cfg["weights"]["dir"]
    # every job that declares weights recorded exactly those, each with the sha256 of its file
    weights_dir = (repo / root).resolve()
    checked = Counter()
    for jobid, job in sorted(jobs.items()):
        declared = {Path(f).relative_to(root).parts[0] for f in job["input"]      # <artifact>/<file>
                    if f.startswith(root + "/") and len(Path(f).relative_to(root).parts) > 1
                    and "/.verified/" not in f}
        if not declared or job["rule"] in WEIGHTS_RULES:
            continue
        assert job["rule"] in PROVENANCE_RULES, (job["rule"], sorted(declared))
        records = _recorded(repo, job)
        assert records, (jobid, job["rule"])
        loaded = set()
        for rec in records:
            assert rec["random_init"] is False, (job["rule"], job["wildcards"], rec)
            for w in rec["weights"]:
                path = (repo / w["path"]).resolve()
                assert path.is_relative_to(weights_dir), (job["rule"], w)
                assert w["sha256"] == _expected_sha(path), (job["rule"], job["wildcards"], w)
                loaded.add(path.relative_to(weights_dir).parts[0])
        assert loaded == declared, (job["rule"], job["wildcards"], sorted(loaded), sorted(declared))
        checked[job["rule"]] += 1
    rows = [b for b, row in cfg["baselines"].items() if row.get("table3", True)]
    assert checked["train_baseline"] == len(rows) and checked["extract_shard"] >= 1, checked
    assert checked["retrieve_knowledge"] == 3 and checked["table5"] == 1, checked
    # the BLIP-2 rows' image tokens came from the checkpoint whose Q-Former they load (ChatGLM-6B
    # trained at all shows the LLM env ran it: its tokenizer loads only under transformers 4.33)
    for job in (j for j in jobs.values() if j["rule"] == "extract_shard"):
        image = [f for f in job["output"] if f.endswith(".image.npz")]
        assert image, job["output"]
        [rec] = _recorded(repo, {**job, "output": image})
        assert [Path(w["path"]).name for w in rec["weights"]] == ["blip2-opt-2.7b"], rec

    # Table 3: every row of the config, each with its numbers and no failure note
    import csv
    with open(repo / "results/tables/table3.csv", encoding="utf-8") as fh:
        ours = [r for r in csv.DictReader(fh) if r["source"] == "ours"]
    assert sorted(r["baseline"] for r in ours) == sorted(rows), ours
    for r in ours:
        assert r["paper_row"] == cfg["baselines"][r["baseline"]]["label"] and not r["note"], r
        for metric in ("BLEU-2", "BLEU-4", "Meteor", "Rouge-L", "CIDEr", "Dist-2", "Dist-3"):
            float(r[metric])                                                  # a number in every cell
    # val was carved from train (the release has none) and evaluated like test
    assert (repo / "results/data/val.jsonl").stat().st_size > 0
    return checked


def test_rehearsal_on_slurm_loads_every_weight_from_its_file(cluster, tmp_path):
    llm_python = ROOT / ".venv-llm" / "bin" / "python"
    assert llm_python.exists(), f"{llm_python} is missing: run tools/setup.sh (the LLM rows' env)"
    t0 = time.monotonic()
    repo = _copy_tree(tmp_path / "rehearsal")
    made = subprocess.run([sys.executable, "-m", "tiktalk.cli", "weights", "make-rehearsal", "rehearsal",
                           "--with-data"], cwd=repo, env=_env(), capture_output=True, text=True, timeout=600)
    assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-4000:]
    t_make = time.monotonic() - t0
    release = repo / "rehearsal" / "release"
    assert sorted(p.name for p in release.iterdir()) == ["test.json", "train.json"]   # no val.json
    cfg = yaml.safe_load((repo / REHEARSAL).read_text(encoding="utf-8"))

    # the profile names config/tiktalk.yaml; --configfile replaces it with the rehearsal
    profile = _test_profile(repo, cluster.cpus, keep_configfile=True)
    t1 = time.monotonic()
    run = _smk(repo, "--profile", profile.name, *TARGETS, "--configfile", REHEARSAL,
               env=_env(TIKTALK_PYTHON_LLM=str(llm_python)))
    log = _wait(run, repo, 2400)
    t_run = time.monotonic() - t1
    assert run.returncode == 0 and "steps (100%) done" in log, log[-6000:] + cluster.diagnostics()
    assert not cluster.jobs(), f"jobs left on the cluster: {cluster.jobs()}"
    jobs = _headers(log)
    submitted = {int(j) for j in re.findall(r"Job (\d+) has been submitted with SLURM jobid", log)}
    remote = {j for j, h in jobs.items() if not h["local"]}
    assert submitted == remote and remote, sorted(submitted ^ remote)
    print(f"\nrehearsal: make-rehearsal {t_make:.0f} s; SLURM run {t_run:.0f} s, {len(jobs)} jobs "
          f"({len(remote)} through sbatch)")

    checked = check_rehearsal(repo, log, cfg)
    print(f"rehearsal test {time.monotonic() - t0:.0f} s; provenance checked: {dict(checked)}")
