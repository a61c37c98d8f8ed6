"""Editing a module re-runs exactly the jobs that depend on it, and nothing else.

In a temporary copy of the repository the demo DAG runs for real up to its manifest checkpoint;
every later job is then marked finished without running (placeholder outputs and
``snakemake --touch --forceall``, which records the code/params metadata a real run records;
a placeholder is never read by a dry-run). For each edit of the table, a module gets one
comment line appended (a content edit: Snakemake 9 ignores a touch of an unchanged small file),
a dry-run lists the jobs it would run, and the module is put back (content and mtime).

The expected jobs are derived from the config (which baselines use knowledge, features, which
family they are, which LLM they build on), so the table below reads like the README's
"Re-running only what changed". When a rule changes its jobs, update the group functions of
:class:`Demo` (one place per kind of job).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tiktalk.data.manifest import shards_of
from tiktalk.formats import SPLITS, STATUS_COLUMNS
from tiktalk.workflow import baseline_needs, is_trained

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("Snakefile", "rules", "workflow", "config", "src", "envs")
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--cores", "2"]
RULE_HEAD = re.compile(r"^(local)?(rule|checkpoint) (\w+):$")


def snakemake(root: Path, *args: str, timeout: int = 600) -> str:
    res = subprocess.run(SNAKEMAKE + list(args), cwd=root, capture_output=True, text=True,
                         timeout=timeout)
    if res.returncode != 0:
        raise RuntimeError(f"snakemake {' '.join(args)} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return res.stdout + res.stderr


def dry_run_jobs(root: Path, *args: str) -> list[dict]:
    """The jobs a dry-run schedules: {"kind", "rule", "wildcards", "inputs", "outputs"}, without
    ``all``."""
    jobs, job = [], None
    for line in snakemake(root, "-n", *args).splitlines():
        head = RULE_HEAD.match(line.strip())
        if head:
            job = {"kind": head.group(2), "rule": head.group(3), "wildcards": "", "inputs": [],
                   "outputs": []}
            if job["rule"] != "all":
                jobs.append(job)
            continue
        if job is None or not line.startswith("    "):
            continue
        key, _, value = line.strip().partition(": ")
        if key == "wildcards":
            job["wildcards"] = value
        elif key in ("input", "output"):
            job[key + "s"] = [v.strip() for v in value.split(",") if v.strip()]
    return jobs


def job_keys(jobs: list[dict]) -> set[tuple[str, str]]:
    return {(j["rule"], j["wildcards"]) for j in jobs}


def write_placeholder(root: Path, out: str, manifest: Path) -> None:
    path = root / out
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if re.fullmatch(r"results/media/s\d{5}\.status\.tsv", out):
        # a checkpoint (media coverage) reads the status tables at DAG time: every video ok
        shard = path.name.split(".")[0]
        from tiktalk.data.manifest import shard_videos

        rows = ["\t".join([v, "ok", "", "1", "1", "1.0", "1.0", ""][: len(STATUS_COLUMNS)])
                for v in shard_videos(manifest)[shard]]
        path.write_text("\n".join(["\t".join(STATUS_COLUMNS)] + rows) + "\n", encoding="utf-8")
    else:
        path.write_bytes(b"")


def mark_finished(root: Path) -> dict[tuple[str, str], dict]:
    """Placeholders for every job after the manifest; checkpoints run for real on them.
    Returns those jobs, by (rule, wildcards)."""
    manifest = root / "results" / "data" / "videos.tsv"
    seen: dict[tuple[str, str], dict] = {}
    for _ in range(5):  # each round may reveal the jobs behind a checkpoint
        jobs = dry_run_jobs(root)
        seen.update({(j["rule"], j["wildcards"]): j for j in jobs})
        pending = [j for j in jobs if not all((root / o).exists() for o in j["outputs"])]
        if not pending:
            break
        for job in pending:
            if job["kind"] != "checkpoint":
                for out in job["outputs"]:
                    write_placeholder(root, out, manifest)
        for job in pending:
            if job["kind"] == "checkpoint":
                snakemake(root, *job["outputs"])
    else:
        raise RuntimeError("jobs still pending after 5 rounds")
    for _ in range(5):  # record metadata; a directory() output must be a directory
        res = subprocess.run(SNAKEMAKE + ["--touch", "--forceall", "-q"], cwd=root,
                             capture_output=True, text=True, timeout=600)
        if res.returncode == 0:
            break
        text = res.stdout + res.stderr
        # the touch of a directory() output writes a flag file inside it
        dirs = set(re.findall(r"Not a directory: '([^']+)/\.snakemake_timestamp'", text))
        if not dirs:
            raise RuntimeError(f"snakemake --touch failed:\n{text[-3000:]}")
        for d in dirs:
            path = root / d
            if path.is_file():
                path.unlink()
            path.mkdir(parents=True, exist_ok=True)
    return seen


# Rule files of the stages (data, media, knowledge, training and decoding, scoring, weights):
# the edit table names their jobs; the rules of every other file are the report level.
STAGE_RULE_FILES = {"common.smk", "data.smk", "media.smk", "knowledge.smk", "train.smk",
                    "evaluate.smk", "weights.smk"}


def baseline_of(wildcards: str) -> str | None:
    m = re.search(r"(?:^|, )baseline=([^,]+)", wildcards)
    return m.group(1) if m else None


def rules_in(smk: Path) -> set[str]:
    """Names of the rules a .smk file defines (also inside ``if`` blocks, and ``use rule``)."""
    text = smk.read_text(encoding="utf-8")
    return (set(re.findall(r"^\s*(?:rule|checkpoint) (\w+):", text, re.M))
            | set(re.findall(r"^\s*use rule \w+ as (\w+)", text, re.M)))


class Demo:
    """The demo config's structure, and the jobs each part of the DAG consists of."""

    def __init__(self, root: Path, jobs: dict[tuple[str, str], dict]):
        self.root = root
        self.jobs = jobs                      # every job after the manifest checkpoint
        self.config = yaml.safe_load((root / "config" / "config.yaml").read_text(encoding="utf-8"))
        self.baselines = self.config["baselines"]
        self.shards = shards_of(root / "results" / "data" / "videos.tsv")
        # jobs of one baseline (train, predict, score, rank...): a `baseline` wildcard
        self.baseline_rules = {r for r, w in jobs if baseline_of(w)}
        # the report level: tables, plots and annotation kits made from the stages' outputs,
        # i.e. every other rule outside the stage files
        self.report_rules = set().union(*(rules_in(f) for f in (root / "rules").glob("*.smk")
                                          if f.name not in STAGE_RULE_FILES))
        self.report_rules -= self.baseline_rules

    # -- which baselines ----------------------------------------------------------------------
    def needing(self, *products: str) -> set[str]:
        return {b for b, c in self.baselines.items() if baseline_needs(c) & set(products)}

    def of_family(self, *families: str) -> set[str]:
        return {b for b, c in self.baselines.items() if c["family"] in families}

    def trained(self) -> set[str]:
        return {b for b, c in self.baselines.items() if is_trained(c)}

    def with_followers(self, names: set[str]) -> set[str]:
        """``names`` and every baseline built on one of them (``llm_from``), transitively."""
        out = set(names)
        while True:
            more = {b for b, c in self.baselines.items() if c.get("llm_from") in out} - out
            if not more:
                return out
            out |= more

    # -- stage jobs -------------------------------------------------------------------------
    def split_jobs(self, rule: str, splits) -> set[tuple[str, str]]:
        return {(rule, f"split={s}") for s in splits}

    def media_jobs(self) -> set[tuple[str, str]]:
        """Every job of the media rules: fetch and extraction of each shard and the summaries
        of their status tables."""
        media = rules_in(self.root / "rules" / "media.smk")
        return {k for k in self.jobs if k[0] in media}

    def scoring(self, names: set[str]) -> set[tuple[str, str]]:
        """The metrics jobs of ``names``, every split the DAG scores."""
        return {(r, w) for r, w in self.jobs if r == "score" and baseline_of(w) in names}

    def baseline_jobs(self, names: set[str]) -> set[tuple[str, str]]:
        """Every job of ``names`` and of the baselines built on them: training, decoding,
        scoring and ranking, whichever splits the DAG has."""
        names = self.with_followers(names)
        jobs = {(r, w) for r, w in self.jobs if r in self.baseline_rules and baseline_of(w) in names}
        assert {("train_baseline", f"baseline={b}") for b in names} <= jobs, names
        return jobs

    # -- the report level: derived from the DAG ------------------------------------------------
    def with_reports(self, stage_jobs: set, module: str | None) -> set[tuple[str, str]]:
        """``stage_jobs`` plus the report-level jobs that import ``module`` (their code input;
        None: a data file, no module) or read what a re-run job writes, transitively."""
        code = f"src/tiktalk/{module}" if module else None   # relative to the working directory
        reports = {k: j for k, j in self.jobs.items() if k[0] in self.report_rules}
        out = set(stage_jobs) | {k for k, j in reports.items() if code in j["inputs"]}
        while True:
            written = {o for k in out if k in self.jobs for o in self.jobs[k]["outputs"]}
            more = {k for k, j in reports.items() if k not in out and written & set(j["inputs"])}
            if not more:
                return out
            out |= more


# The edit table: module (under src/tiktalk) -> the stage jobs a content edit of it re-runs
# (the tables and kits made from their outputs follow: Demo.with_reports).
EDITS = {
    "knowledge/retrieve.py": lambda d: (d.split_jobs("retrieve_knowledge", SPLITS)
                                        | d.baseline_jobs(d.needing("knowledge"))),
    "media/decode.py": lambda d: d.media_jobs() | d.baseline_jobs(d.needing("features",
                                                                            "image_features")),
    "models/maria.py": lambda d: d.baseline_jobs(d.of_family("maria")),
    # a family's descriptor: that family's jobs only
    "families/maria.py": lambda d: d.baseline_jobs(d.of_family("maria")),
    "families/blip2.py": lambda d: d.baseline_jobs(d.of_family("blip2")),
    "models/causal_lm.py": lambda d: d.baseline_jobs(d.of_family("causal_lm")),
    "media/image_tokens.py": lambda d: d.baseline_jobs(d.of_family("blip2")),
    "models/livebot.py": lambda d: d.baseline_jobs(d.of_family("livebot")),
    "metrics/evaluate.py": lambda d: d.scoring(set(d.baselines)),
    "training/trainer.py": lambda d: d.baseline_jobs(d.trained()),
    "training/checkpoint.py": lambda d: d.baseline_jobs(d.trained()),
}


# a row of your own system (family external): its files, read by its own jobs only
EXTERNAL_FILES = {"predictions": "mine/test.jsonl", "scores": "mine/scores.jsonl"}


def add_external_row(root: Path) -> None:
    """The demo config plus ``mine``, an external row with predictions and candidate scores
    (well-formed; its jobs never read them here: every job after the manifest is marked done)."""
    (root / "mine").mkdir()
    (root / EXTERNAL_FILES["predictions"]).write_text('{"dialogue_id": "d1", "response": "好"}\n')
    (root / EXTERNAL_FILES["scores"]).write_text('{"dialogue_id": "d1", "loglik": [0.0, -1.0]}\n')
    path = root / "config" / "config.yaml"
    cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    cfg["baselines"]["mine"] = {"label": "My model", "family": "external",
                                **{k: {"test": v} for k, v in EXTERNAL_FILES.items()}}
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Demo:
    root = tmp_path_factory.mktemp("repo")
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif src.exists():
            shutil.copy2(src, root / name)
    add_external_row(root)
    snakemake(root, "results/data/videos.tsv")        # real jobs up to the checkpoint
    jobs = mark_finished(root)
    assert "Nothing to be done" in snakemake(root, "-n")
    return Demo(root, jobs)


def rerun_after_edit(d: Demo, module: str, edit: bytes = b"\n# a content edit\n",
                     path: Path | None = None) -> set[tuple[str, str]]:
    path = path or d.root / "src" / "tiktalk" / module
    original, stat = path.read_bytes(), path.stat()
    try:
        path.write_bytes(original + edit)
        return job_keys(dry_run_jobs(d.root))
    finally:
        path.write_bytes(original)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@pytest.mark.parametrize("module", sorted(EDITS))
def test_an_edit_reruns_exactly_its_dependents(demo, module):
    got = rerun_after_edit(demo, module)
    want = demo.with_reports(EDITS[module](demo), module)
    assert got == want, (f"{module}: re-runs {sorted(got - want)} that do not depend on it; "
                         f"misses {sorted(want - got)}")


@pytest.mark.parametrize("kind", sorted(EXTERNAL_FILES))
def test_editing_an_external_rows_file_reruns_that_row_only(demo, kind):
    """The predictions file re-copies and re-scores that row (then the tables that read it),
    the scores file re-ranks it; no other row's job."""
    line = {"predictions": b'{"dialogue_id": "d2", "response": "x"}\n',
            "scores": b'{"dialogue_id": "d2", "loglik": [0.0, -2.0]}\n'}[kind]
    got = rerun_after_edit(demo, "", line, demo.root / EXTERNAL_FILES[kind])
    stage = ({("external_predictions", "baseline=mine, split=test")} | demo.scoring({"mine"})
             if kind == "predictions" else {("external_ranking", "baseline=mine, split=test")})
    want = demo.with_reports(stage, None)
    assert got == want, f"re-runs {sorted(got - want)} that do not read it; misses {sorted(want - got)}"
    assert {baseline_of(w) for _, w in got} <= {"mine", None}


def test_edits_put_back_leave_nothing_to_do(demo):
    """Putting a module back (content and mtime) schedules nothing: the edits above did not
    leak into each other, and the finished demo is up to date."""
    assert "Nothing to be done" in snakemake(demo.root, "-n")


def test_a_finished_run_moved_elsewhere_has_nothing_to_do(demo, tmp_path):
    """The whole directory moved (or mounted at another path on a cluster's nodes): every
    recorded input path is relative to it, so nothing re-runs. Absolute package paths among
    the inputs had re-run every job."""
    moved = tmp_path / "elsewhere" / "repo"
    shutil.copytree(demo.root, moved, symlinks=True, copy_function=shutil.copy2)
    out = snakemake(moved, "-n")
    assert "Nothing to be done" in out, out[-3000:]
