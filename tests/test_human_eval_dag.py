"""The human-evaluation rules in the DAG (dry runs): sheets and pages always, Table 4 and
Figure 2 only once the config names the filled sheets, and a named but empty directory is an
error that says which key and directory."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def dry_run(tmp_path, cfg) -> subprocess.CompletedProcess:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "2", "--directory",
                           str(tmp_path), "--snakefile", str(ROOT / "Snakefile"), "--configfile",
                           str(path)], capture_output=True, text=True, timeout=300)


def counts(stdout: str) -> dict[str, int]:
    table = stdout.split("job ", 1)[1] if "job " in stdout else ""
    return {m.group(1): int(m.group(2)) for m in
            (re.fullmatch(r"(\w+)\s+(\d+)", ln.strip()) for ln in table.splitlines()) if m}


def demo():
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))


def test_sheets_always_tables_when_configured(tmp_path):
    res = dry_run(tmp_path, demo())
    assert res.returncode == 0, res.stderr[-3000:]
    jobs = counts(res.stdout)
    for rule in ("human_eval_sheets", "context_sources_sheets", "human_eval_pages",
                 "context_sources_pages", "annotation_frames"):
        assert jobs.get(rule) == 1, (rule, jobs)
    assert "table4" not in jobs and "figure2" not in jobs

    for name in ("t4", "cs"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "annotator_1.csv").write_text("filled\n", encoding="utf-8")
    cfg = demo()
    cfg["human_eval"].update(ratings_dir=str(tmp_path / "t4"), context_sources_dir=str(tmp_path / "cs"))
    res = dry_run(tmp_path, cfg)
    assert res.returncode == 0, res.stderr[-3000:]
    jobs = counts(res.stdout)
    assert jobs.get("table4") == 1 and jobs.get("figure2") == 1, jobs


def test_empty_ratings_dir_is_named(tmp_path):
    (tmp_path / "empty").mkdir()
    cfg = demo()
    cfg["human_eval"]["ratings_dir"] = str(tmp_path / "empty")
    res = dry_run(tmp_path, cfg)
    assert res.returncode != 0
    assert f"human_eval.ratings_dir: no filled sheets (*.csv, *.xlsx) in {tmp_path / 'empty'}" in res.stdout + res.stderr


def test_rated_baselines_must_be_runs(tmp_path):
    cfg = demo()
    cfg["human_eval"]["baselines"] = ["maria", "nonesuch"]
    res = dry_run(tmp_path, cfg)
    assert res.returncode != 0
    assert "human_eval.baselines: ['nonesuch'] are not baselines" in res.stdout + res.stderr
