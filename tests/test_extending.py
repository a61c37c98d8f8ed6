"""The worked examples of docs/extending.md, applied to a copy of the repository as the page
says: a new model family is ONE new module plus a config entry (a dry-run plans its jobs, one
real training step trains it and its predictions are decoded), and a new table is four files
(a rule, a script, a line in the final-output function, a report caption)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("Snakefile", "rules", "workflow", "config", "src", "envs")
# <!-- kind: target --> then a fenced block: what to do with the block, and where
BLOCK = re.compile(r"<!-- (file|append|after|config): (.*?) -->\n```\w*\n(.*?)```", re.S)


def doc_blocks() -> list[tuple[str, str, str]]:
    return BLOCK.findall((ROOT / "docs" / "extending.md").read_text(encoding="utf-8"))


def apply(root: Path, kind: str, target: str, text: str) -> None:
    if kind == "file":
        path = root / target
        assert not path.exists(), f"{target} exists already: the example must add it"
        path.write_text(text, encoding="utf-8")
    elif kind == "append":
        with open(root / target, "a", encoding="utf-8") as fh:
            fh.write(text)
    elif kind == "after":
        rel, anchor = (x.strip() for x in target.split(" | ", 1))
        path = root / rel
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        at = [i for i, line in enumerate(lines) if line.strip() == anchor]
        assert len(at) == 1, f"{rel}: the anchor {anchor!r} must be one line"
        lines.insert(at[0] + 1, text)
        path.write_text("".join(lines), encoding="utf-8")
    else:  # config: merge the block's mapping under `target` into the demo config
        path = root / "config" / "config.yaml"
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
        cfg[target].update(yaml.safe_load(text)[target])
        path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")


def digests(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for name in COPIED for p in sorted((root / name).rglob("*") if (root / name).is_dir()
                                                else [root / name])
            if p.is_file() and "__pycache__" not in p.parts}


def snakemake(root: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *args], cwd=root,
                          capture_output=True, text=True, timeout=timeout)


class Repo(type(Path())):
    """The extended copy; ``changed``: the files the examples added or edited."""

    changed: set[str] = set()


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Repo:
    root = Repo(tmp_path_factory.mktemp("extended"))
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, root / name)
    before = digests(root)
    for kind, target, text in doc_blocks():
        apply(root, kind, target, text)
    after = digests(root)
    root.changed = {f for f in after if before.get(f) != after[f]}
    return root


def test_the_examples_touch_only_the_files_the_page_promises(repo):
    """A family: one new module and the config; a table: four files."""
    assert {k for k, _, _ in doc_blocks()} == {"file", "append", "after", "config"}
    family = {"src/tiktalk/families/toy.py", "config/config.yaml"}
    table = {"rules/report.smk", "workflow/scripts/table_lengths.py", "rules/common.smk",
             "workflow/report/lengths.rst"}
    assert repo.changed == family | table


def _dry_run_jobs(out: str) -> dict[str, list[dict]]:
    """rule -> its jobs ({"wildcards", "input"}) in a dry-run's output."""
    jobs: dict[str, list[dict]] = {}
    job = None
    for line in out.splitlines():
        head = re.match(r"^(?:local)?(?:rule|checkpoint) (\w+):$", line.strip())
        if head:
            job = {"wildcards": "", "input": ""}
            jobs.setdefault(head.group(1), []).append(job)
        elif job is not None and line.startswith("    "):
            key, _, value = line.strip().partition(": ")
            if key in job:
                job[key] = value
    return jobs


def test_a_dry_run_plans_the_toy_rows_jobs_and_the_new_table(repo):
    res = snakemake(repo, "-n")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    jobs = _dry_run_jobs(res.stdout)
    toy = {rule for rule, js in jobs.items() for j in js if "baseline=toy" in j["wildcards"]}
    assert {"train_baseline", "predict", "score"} <= toy and "rank" not in toy   # scores=False
    train = next(j for j in jobs["train_baseline"] if j["wildcards"] == "baseline=toy")
    assert "src/tiktalk/families/toy.py" in train["input"]            # its code input
    assert "results/tokenizer/vocab.txt" in train["input"]            # the pipeline's tokenizer
    assert "features" not in train["input"] and "knowledge" not in train["input"]
    (table,) = jobs["table_lengths"]
    assert "src/tiktalk/data/predictions.py" in table["input"]        # from the script's imports
    assert "results/predictions/toy/test.jsonl" in table["input"]


def test_a_typo_in_the_new_familys_params_fails_the_dry_run(repo, tmp_path):
    cfg = yaml.safe_load((repo / "config" / "config.yaml").read_text(encoding="utf-8"))
    cfg["baselines"]["toy"]["params"]["hiden"] = 16
    (tmp_path / "typo.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    res = snakemake(repo, "-n", "--configfile", str(tmp_path / "typo.yaml"))
    errors = [ln for ln in (res.stdout + res.stderr).splitlines() if "config error" in ln]
    assert res.returncode != 0
    assert errors == ["config error: baselines.toy.params: unknown key 'hiden'; did you mean 'hidden'?"]


def test_one_real_training_step_and_decoding_of_the_toy_family(repo):
    res = snakemake(repo, "results/predictions/toy/test.jsonl", timeout=900)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    log = [json.loads(line) for line in
           (repo / "results/models/toy/train_log.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(r["step"], r["lr"]) for r in log] == [(1, 0.01)] and log[0]["loss"] > 0
    tests = (repo / "results/data/test.jsonl").read_text(encoding="utf-8").splitlines()
    preds = [json.loads(line) for line in
             (repo / "results/predictions/toy/test.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [p["dialogue_id"] for p in preds] == [json.loads(t)["dialogue_id"] for t in tests]
