"""The whole demo DAG, end to end, in a scratch copy of the repo (slow: minutes).

One run serves several checks: every output exists, Table 3 has all eleven rows, the wiring
holds on the demo's item types, and afterwards dry-runs schedule only what a change touches.
"""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _copy_repo(dst: Path) -> Path:
    ignore = shutil.ignore_patterns(".venv", ".git", "results", ".snakemake", "__pycache__",
                                    "*.egg-info", ".pytest_cache")
    shutil.copytree(ROOT, dst, ignore=ignore)
    (dst / "results").mkdir(exist_ok=True)
    return dst


def smk(repo: Path, *args, timeout=3000):
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=repo,
                          capture_output=True, text=True, timeout=timeout)


def scheduled(repo: Path, *args) -> dict[str, int]:
    res = smk(repo, "-n", "--cores", "2", *args, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    if "Nothing to be done" in res.stdout + res.stderr:
        return {}
    counts = {}
    for line in res.stdout.split("job ", 1)[1].splitlines():
        m = re.fullmatch(r"(\w+)\s+(\d+)", line.strip())
        if m and m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    repo = _copy_repo(tmp_path_factory.mktemp("demo") / "repo")
    res = smk(repo, "--cores", "2")
    assert res.returncode == 0, (res.stdout[-3000:], res.stderr[-5000:])
    return repo


def test_all_outputs_and_table3(demo):
    cfg = yaml.safe_load((demo / "config/config.yaml").read_text())
    r = demo / "results"
    for name in ("table3.csv", "table3.md", "table3.tex", "demo_item_types.csv"):
        assert (r / "tables" / name).stat().st_size > 0
    assert (r / "plots" / "table3.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = pd.read_csv(r / "tables" / "table3.csv")
    ours = table[table["source"] == "ours"]
    assert sorted(ours["baseline"]) == sorted(cfg["baselines"])
    assert set(ours["paper_row"]) == {b["label"] for b in cfg["baselines"].values()}
    assert len(table[table["source"] == "paper"]) == 11
    for b in cfg["baselines"]:
        m = json.loads((r / "metrics" / b / "test.json").read_text())
        preds = (r / "predictions" / b / "test.jsonl").read_text().splitlines()
        assert m["n"] == len(preds) == 48
        assert all(0 <= m[k] <= 100 for k in ("bleu_2", "bleu_4", "meteor", "rouge_l", "dist_2"))
    media = pd.read_csv(r / "media" / "report.tsv", sep="\t")
    assert media["videos"].sum() == 136


def _item_score(demo: Path, baseline: str, item_type: str) -> float:
    t = pd.read_csv(demo / "results" / "tables" / "demo_item_types.csv")
    row = t[(t.baseline == baseline) & (t.item_type == item_type)]
    assert len(row) == 1, (baseline, item_type, t.to_string())
    return float(row["bleu_2"].iloc[0])


# The wiring (docs/demo.md): the right modality helps on the items only it can answer.
# The demo's models are tiny and from scratch; each relation below is what a misaligned video,
# shard index or dropped feature would break.
def test_wiring_frames_help_on_visual_items(demo):
    assert _item_score(demo, "maria", "visual") > _item_score(demo, "text", "visual")


def test_wiring_c3kg_helps_text_model_on_knowledge_items(demo):
    assert _item_score(demo, "c3kg_text", "knowledge") > _item_score(demo, "text", "knowledge")


def test_wiring_c3kg_helps_maria_on_knowledge_items(demo):
    assert _item_score(demo, "maria_c3kg", "knowledge") > _item_score(demo, "maria", "knowledge")


def test_rerun_only_what_changed(demo):
    assert scheduled(demo) == {}, "a complete run must leave nothing to do"

    # one baseline's hyper-parameter -> that baseline only, then the tables
    cfg = yaml.safe_load((demo / "config/config.yaml").read_text())
    cfg["baselines"]["livebot"]["params"]["train"]["lr"] = 5e-4
    (demo / "changed.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True))
    got = scheduled(demo, "--configfile", "changed.yaml")
    assert got == {"train_baseline": 1, "predict": 1, "score": 1, "table3": 1,
                   "demo_item_types": 1, "all": 1}, got

    # a scheduling hint is not a change
    cfg = yaml.safe_load((demo / "config/config.yaml").read_text())
    cfg["baselines"]["livebot"]["priority"] = 7
    cfg["baselines"]["maria"].pop("priority", None)
    (demo / "reprioritised.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False))
    assert scheduled(demo, "--configfile", "reprioritised.yaml") == {}

    # metrics code -> scoring and tables only
    path = demo / "src/tiktalk/metrics/evaluate.py"
    path.write_text(path.read_text() + "\n# edited\n")
    got = scheduled(demo)
    assert got == {"score": 1, "table3": 1, "demo_item_types": 1, "all": 1}, got
    smk(demo, "--cores", "2", "--touch")

    # the Maria model -> the six Maria-family rows only
    path = demo / "src/tiktalk/models/maria.py"
    path.write_text(path.read_text() + "\n# edited\n")
    got = scheduled(demo)
    assert got == {"train_baseline": 6, "predict": 6, "score": 1, "table3": 1,
                   "demo_item_types": 1, "all": 1}, got
