"""A failed baseline blocks only itself: the real score/table3 rules and the onerror handler
(rules/evaluate.smk, rules/report.smk) in a tiny workflow whose training and prediction are
stubs, one of which fails. Runs Snakemake in a temp dir (two METEOR JVMs per run: ~1 min)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tiktalk.io import write_jsonl
from tiktalk.report.table3 import Blocker, Table3Files, missing_reason, write_partial_table3

ROOT = Path(__file__).resolve().parents[1]

SNAKEFILE = textwrap.dedent('''
    import sys
    from pathlib import Path

    REPO = Path({repo!r})
    sys.path.insert(0, str(REPO / "src"))

    configfile: "config.yaml"

    R = "results"
    BASELINES = list(config["baselines"])
    # what rules/common.smk defines for the included rules: one seed, every row trained
    TRAINED = BASELINES
    SEEDS = [config["seed"]]
    SEED_RUNS = {{b: [b] for b in BASELINES}}
    SRC = REPO / "src" / "tiktalk"


    def code(stage, family=None):
        return []


    wildcard_constraints:
        split="train|val|test",
        baseline="|".join(BASELINES),


    rule all:
        input:
            f"{{R}}/tables/table3.csv",


    rule train_baseline:
        input:
            lambda w: [f"{{R}}/models/{{config['baselines'][w.baseline]['llm_from']}}/model.pt"]
            if config["baselines"][w.baseline].get("llm_from") else [],
        output:
            f"{{R}}/models/{{{{baseline}}}}/model.pt",
        params:
            fail=lambda w: config["baselines"][w.baseline].get("fail", ""),
        log:
            f"{{R}}/logs/train_baseline/{{{{baseline}}}}.log",
        script:
            "stub_train.py"


    rule predict:
        input:
            model=f"{{R}}/models/{{{{baseline}}}}/model.pt",
            references=f"{{R}}/data/{{{{split}}}}_references.jsonl",
        output:
            f"{{R}}/predictions/{{{{baseline}}}}/{{{{split}}}}.jsonl",
        log:
            f"{{R}}/logs/predict/{{{{baseline}}}}_{{{{split}}}}.log",
        script:
            "stub_predict.py"


    include: str(REPO / "rules" / "evaluate.smk")
    include: str(REPO / "rules" / "report.smk")
''')

# The stubs use the same failure-record wrapper as workflow/scripts/{train_baseline,predict}.py.
STUB_TRAIN = textwrap.dedent('''
    from pathlib import Path
    from tiktalk.logs import script_logging

    sm = snakemake
    with script_logging(sm.log[0], 1, job=sm):
        if sm.params.fail:
            raise RuntimeError(sm.params.fail)
        Path(sm.output[0]).write_text("weights of " + sm.wildcards.baseline)
''')

STUB_PREDICT = textwrap.dedent('''
    import json
    from tiktalk.io import read_jsonl, write_jsonl
    from tiktalk.logs import script_logging

    sm = snakemake
    with script_logging(sm.log[0], 1, job=sm):
        refs = read_jsonl(sm.input.references)
        # each baseline answers with its own reference slot, so the rows differ
        slot = sum(map(ord, sm.wildcards.baseline)) % 2
        write_jsonl(sm.output[0], [{"dialogue_id": r["dialogue_id"], "response": r["references"][slot]}
                                   for r in refs])
''')

REFS = [("d1", ["今天天气真好", "我们去吃火锅吧"]), ("d2", ["小狗好可爱啊", "蓝色的圆圈"]),
        ("d3", ["听到高音了", "红色方块在动"])]

CONFIG = {
    "seed": 13,
    "evaluation": {"protocol": "per-reference", "table_split": "test", "splits": ["test"]},
    "baselines": {
        "good": {"family": "maria", "label": "Maria"},
        "broken": {"family": "causal_lm", "label": "ChatGLM-6B", "fail": "CUDA out of memory. Tried to allocate 2.00 GiB"},
        "child": {"family": "blip2", "label": "BLIP-2_Img", "llm_from": "broken"},
    },
}


def smk(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *args], cwd=repo,
                          capture_output=True, text=True, timeout=600)


def scheduled(repo: Path, *args: str) -> dict[str, int]:
    res = smk(repo, "-n", "--quiet", "rules", *args)
    assert res.returncode == 0, res.stderr[-3000:]
    counts = {}
    for line in (res.stdout + res.stderr).splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit() and parts[0] not in ("total", "job"):
            counts[parts[0]] = int(parts[1])
    return counts


@pytest.fixture()
def workflow_dir(tmp_path):
    if shutil.which("java") is None:
        pytest.skip("METEOR needs Java")
    (tmp_path / "Snakefile").write_text(SNAKEFILE.format(repo=str(ROOT)))
    (tmp_path / "stub_train.py").write_text(STUB_TRAIN)
    (tmp_path / "stub_predict.py").write_text(STUB_PREDICT)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(CONFIG, allow_unicode=True))
    write_jsonl(tmp_path / "results" / "data" / "test_references.jsonl",
                [{"dialogue_id": d, "references": rs} for d, rs in REFS])
    return tmp_path


def test_one_failed_baseline_leaves_the_others_and_a_partial_table3(workflow_dir):
    r = workflow_dir / "results"
    res = smk(workflow_dir, "--keep-going")
    assert res.returncode != 0                      # the run reports its failure
    assert (r / "metrics" / "good" / "test.json").exists()
    assert not (r / "metrics" / "broken" / "test.json").exists()
    assert not (r / "tables" / "table3.csv").exists()   # the strict table waits for all rows

    table = pd.read_csv(r / "tables" / "table3.partial.csv", dtype=str, keep_default_na=False)
    ours = table[table["source"] == "ours"].set_index("baseline")
    good = json.loads((r / "metrics" / "good" / "test.json").read_text())
    assert ours.loc["good", "BLEU-2"] == f"{good['bleu_2']:.2f}" and ours.loc["good", "note"] == ""
    log = "results/logs/train_baseline/broken.log"
    assert ours.loc["broken", "note"] == (
        f"train_baseline (baseline=broken) failed: RuntimeError: CUDA out of memory. "
        f"Tried to allocate 2.00 GiB (log: {log})")
    assert ours.loc["broken", "BLEU-2"] == "" and ours.loc["child", "BLEU-2"] == ""
    # the BLIP-2 row needs the failed LLM's weights: its row names that job
    assert ours.loc["child", "note"].startswith("not run: train_baseline (baseline=broken) failed: RuntimeError")
    assert len(table[table["source"] == "paper"]) == 11
    md = (r / "tables" / "table3.partial.md").read_text(encoding="utf-8")
    assert "| Note |" in md and "CUDA out of memory" in md
    assert (r / "plots" / "table3.partial.png").read_bytes()[:4] == b"\x89PNG"
    record = json.loads((r / "failures" / "train_baseline" / "broken.json").read_text())
    assert record["status"] == "failed" and record["log"] == log

    # fixed: the next run trains, predicts and scores only what is missing, then the strict
    # table replaces the partial one and the failure record is gone
    cfg = yaml.safe_load((workflow_dir / "config.yaml").read_text())
    del cfg["baselines"]["broken"]["fail"]
    (workflow_dir / "config.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True))
    assert scheduled(workflow_dir) == {"train_baseline": 2, "predict": 2, "score": 2, "bootstrap": 1,
                                      "table3": 1, "all": 1}
    res = smk(workflow_dir)
    assert res.returncode == 0, res.stderr[-3000:]
    table = pd.read_csv(r / "tables" / "table3.csv", dtype=str, keep_default_na=False)
    assert set(table.loc[table["source"] == "ours", "baseline"]) == {"good", "broken", "child"}
    assert (table["note"] == "").all()
    assert not list((r / "tables").glob("*.partial.*")) and not (r / "plots" / "table3.partial.png").exists()
    assert not (r / "failures" / "train_baseline" / "broken.json").exists()
    assert scheduled(workflow_dir) == {}

    # one baseline's new predictions re-score that baseline alone
    pred = r / "predictions" / "good" / "test.jsonl"
    rows = [json.loads(x) for x in pred.read_text(encoding="utf-8").splitlines()]
    write_jsonl(pred, [{**rows[0], "response": rows[0]["response"] + "啊"}, *rows[1:]])
    assert scheduled(workflow_dir) == {"score": 1, "bootstrap": 1, "table3": 1, "all": 1}


# ----------------------------------------------------------------------------- reasons


def test_missing_reasons_read_failure_records(tmp_path):
    log = tmp_path / "results" / "logs" / "predict" / "m_test.log"
    rec = tmp_path / "results" / "failures" / "predict" / "m_test.json"
    rec.parent.mkdir(parents=True)
    rec.write_text(json.dumps({"status": "failed", "reason": "ValueError: bad batch"}))
    wc = {"baseline": "m", "split": "test"}
    assert missing_reason("m", [Blocker("predict", wc, str(log))]) == (
        f"predict (baseline=m, split=test) failed: ValueError: bad batch (log: {log})")
    rec.write_text(json.dumps({"status": "running"}))
    assert missing_reason("m", [Blocker("predict", wc, str(log))]) == (
        f"predict (baseline=m, split=test) was killed before it finished (log: {log})")
    rec.unlink()
    shard = Blocker("extract_shard", {"shard": "s00001"}, "results/logs/extract_shard/s00001.log")
    waiting = Blocker("predict", wc, "", failed=False)
    assert missing_reason("m", [waiting, shard]) == (
        "not run: extract_shard (shard=s00001) failed (log: results/logs/extract_shard/s00001.log); "
        "predict (baseline=m, split=test) was not run (the run stopped first; add --keep-going)")
    assert missing_reason("m", [shard] * 4).endswith("; and 2 more job(s)")
    assert missing_reason("m", []).startswith("no metrics")


def test_partial_table_without_any_metrics_and_the_latex_caption(tmp_path):
    files = Table3Files(*(str(tmp_path / n) for n in ("t3.csv", "t3.md", "t3.tex", "t3.png")))
    out = write_partial_table3({}, {"m": [Blocker("train_baseline", {"baseline": "m"})]},
                               {"m": "Maria"}, files)
    assert out.md == str(tmp_path / "t3.partial.md") and not Path(out.png).exists()
    assert not Path(files.csv).exists()
    tex = Path(out.tex).read_text(encoding="utf-8")
    assert "Missing rows: m: train\\_baseline (baseline=m) failed." in tex
    assert "Maria & -- & --" in tex             # the paper's label names the row


# ----------------------------------------------------------------------------- METEOR's cost


def test_a_score_job_starts_one_meteor_jvm_for_every_reference_slot(tmp_path, monkeypatch):
    """METEOR's start (its JVM loads the paraphrase table: ~10 CPU s) is paid once per score
    job: one process serves the five reference slots of the per-reference protocol, and it is
    gone when the job ends."""
    if shutil.which("java") is None:
        pytest.skip("METEOR needs Java")
    from tiktalk.metrics import evaluate as evaluate_module

    started = []

    class Counted(evaluate_module.MeteorProcess):
        def __init__(self):
            super().__init__()
            started.append(self)

    monkeypatch.setattr(evaluate_module, "MeteorProcess", Counted)
    refs = [{"dialogue_id": f"d{i}", "references": [f"第{i}句回复{k}" for k in range(5)]}
            for i in range(4)]
    write_jsonl(tmp_path / "refs.jsonl", refs)
    write_jsonl(tmp_path / "pred.jsonl", [{"dialogue_id": r["dialogue_id"], "response": r["references"][0]}
                                          for r in refs])
    metrics = evaluate_module.evaluate_files(tmp_path / "pred.jsonl", tmp_path / "refs.jsonl",
                                             tmp_path / "m.json", protocol="per-reference")
    assert 0 < metrics["meteor"] < 100                 # scored against each of the 5 slots
    assert len(started) == 1
    assert started[0].closed and started[0].meteor.meteor_p.poll() is not None
