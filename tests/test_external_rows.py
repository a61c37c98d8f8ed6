"""Rows of your own system (``family: external``): a predictions file in the ``tiktalk
evaluate`` format and, optionally, candidate scores, scored exactly like the paper's rows.

* Each file is checked at DAG build: a missing file, a bad line, a split the run needs but the
  row lacks is one config error naming the file and line.
* A real run on the demo data with two external rows: the score job's metrics equal ``tiktalk
  evaluate``'s on the same file, the rows enter Table 3 (with the bootstrap), the ranking table
  (the candidate scores ranked as a model's), the rating sheets and the Figure 4 page.
* Editing one row's file re-runs that row's copy and score jobs and the tables, nothing of the
  other row.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tiktalk.config_check import load_schema, workflow_config_problems
from tiktalk.data.predictions import predictions_problems
from tiktalk.metrics.ranking import (candidate_scores_problems, ranking_metrics,
                                     ranking_result, read_candidate_scores)

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "config" / "schema.yaml"


def _demo() -> dict:
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))


def _write(path: Path, lines: list) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x, ensure_ascii=False)) + "\n"
                            for x in lines), encoding="utf-8")
    return path


# ---- the files, checked at DAG build ----------------------------------------------------------

def test_a_bad_predictions_file_names_file_and_line(tmp_path):
    good = _write(tmp_path / "good.jsonl", [{"dialogue_id": "a", "response": "好"},
                                            {"dialogue_id": "b", "response": ""}])
    assert predictions_problems(good) == []
    bad = _write(tmp_path / "bad.jsonl", [{"dialogue_id": "a", "response": "好"}, "{not json",
                                          {"dialogue_id": "b"}, ["a"], {"dialogue_id": "a", "response": "x"}])
    assert predictions_problems(bad) == [
        f"{bad}:2: not valid JSON (Expecting property name enclosed in double quotes)",
        f"{bad}:3: dialogue 'b': no response string",
        f"{bad}:4: expected a JSON object, got list",
        f"{bad}:5: dialogue 'a' again (first on line 1)"]
    assert predictions_problems(tmp_path / "none.jsonl") == [f"{tmp_path / 'none.jsonl'}: no such file"]
    assert predictions_problems(_write(tmp_path / "empty.jsonl", [])) == [f"{tmp_path / 'empty.jsonl'}: no rows"]


def test_a_bad_scores_file_names_file_and_line(tmp_path):
    bad = _write(tmp_path / "s.jsonl", [{"dialogue_id": "a", "loglik": [0.0, -1.0]},
                                        {"dialogue_id": "b", "loglik": [0.0]},
                                        {"dialogue_id": "c", "loglik": [0, 1], "n_tokens": [1]},
                                        {"dialogue_id": "d", "loglik": "high"}])
    assert candidate_scores_problems(bad) == [
        f"{bad}:2: dialogue 'b': 1 candidate scores, the first line has 2",
        f"{bad}:3: dialogue 'c': n_tokens must be a list of 2 numbers, as loglik",
        f"{bad}:4: dialogue 'd': loglik must be a non-empty list of numbers"]


def test_candidate_scores_are_ranked_as_a_models(tmp_path):
    """The external ranking uses the rank jobs' own maths: the same scores give the same file."""
    rng = np.random.default_rng(0)
    n = 8
    candidates = {"n_candidates": n, "dialogues": [
        {"dialogue_id": f"d{i}", "candidates": [str(j) for j in range(n)],
         "references": [int(r) for r in rng.choice(n, 2, replace=False)]} for i in range(5)]}
    loglik, tokens = rng.normal(size=(5, n)), rng.integers(1, 9, size=(5, n))
    rows = [{"dialogue_id": d["dialogue_id"], "loglik": loglik[i].tolist(),
             "n_tokens": tokens[i].tolist()} for i, d in enumerate(candidates["dialogues"])]
    path = _write(tmp_path / "s.jsonl", rows[::-1])           # any order of lines
    got = read_candidate_scores(path, candidates)
    np.testing.assert_array_equal(got[0], loglik)
    np.testing.assert_array_equal(got[1], tokens)
    result = ranking_result(candidates, *got, "mean", "test")
    want = ranking_metrics(loglik / tokens, [d["references"] for d in candidates["dialogues"]])
    assert {k: result["metrics"][k] for k in want} == want
    _write(path, rows[1:])
    with pytest.raises(ValueError, match=r"s.jsonl: the scores do not cover .*missing \['d0'\]"):
        read_candidate_scores(path, candidates)


def _external_config(tmp_path: Path, **row) -> dict:
    cfg = _demo()
    cfg["baselines"]["mine"] = {"label": "My model", "family": "external", **row}
    return cfg


def test_the_config_check_reads_every_file_and_names_file_and_line(tmp_path):
    preds = _write(tmp_path / "test.jsonl", [{"dialogue_id": "a", "response": "好"}])
    cfg = _external_config(tmp_path, predictions={"test": str(preds)})
    assert workflow_config_problems(cfg, SCHEMA) == []
    _write(preds, [{"dialogue_id": "a", "response": "好"}, {"dialogue_id": 3, "response": "x"}])
    scores = tmp_path / "scores.jsonl"
    cfg = _external_config(tmp_path, predictions={"test": str(preds), "val": str(tmp_path / "v.jsonl")},
                           scores={"test": str(scores)})
    assert workflow_config_problems(cfg, SCHEMA) == [
        f"baselines.mine.predictions.test: {preds}:2: no dialogue_id string in ['dialogue_id', 'response']",
        f"baselines.mine.predictions.val: {tmp_path / 'v.jsonl'}: no such file",
        f"baselines.mine.scores.test: {scores}: no such file"]


def test_an_external_row_takes_only_its_own_keys():
    cfg = _external_config(Path("."), predictions={"test": "x.jsonl"}, params={"train": {}},
                           llm_from="chatglm")
    cfg["baselines"]["dialogpt"]["predictions"] = {"test": "y.jsonl"}
    cfg["baselines"]["dialogpt"]["llm_from"] = "chatglm"
    cfg["baselines"]["blip2_img"]["llm_from"] = "livebotx"
    assert workflow_config_problems(cfg, SCHEMA) == [
        "baselines.dialogpt.predictions: a row of family 'dialogpt' takes no 'predictions'",
        "baselines.dialogpt.llm_from: a row of family 'dialogpt' takes no 'llm_from'",
        "baselines.blip2_img.llm_from: 'livebotx' is not a trained baseline of the config",
        "baselines.mine.llm_from: a row of family 'external' takes no 'llm_from'",
        "baselines.mine.params: a row of family 'external' takes no 'params'",
        "baselines.mine.predictions.test: x.jsonl: no such file",
    ]
    del cfg["baselines"]["mine"]["predictions"]
    from tiktalk.config_check import config_problems

    assert "baselines.mine.predictions: required key is missing" in config_problems(cfg, load_schema(SCHEMA))


def test_a_label_that_nearly_spells_a_paper_row_is_a_typo():
    """Labels are free (your own rows), but one that nearly spells a paper row would silently
    lose the paper's numbers beside it: a config error naming the row it means."""
    cfg = _demo()
    cfg["baselines"]["maria_c3kg"]["label"] = "Maria-C3KG"
    cfg["baselines"]["text"]["label"] = "TEXT"
    cfg["baselines"]["dialogpt"]["label"] = "My model"
    assert workflow_config_problems(cfg, SCHEMA) == [
        "baselines.maria_c3kg.label: 'Maria-C3KG' is not a row of the paper's Table 3; did you "
        "mean 'Maria+C3KG'? (a label far from every paper row is a row of your own)",
        "baselines.text.label: 'TEXT' is not a row of the paper's Table 3; did you mean 'text'? "
        "(a label far from every paper row is a row of your own)"]


def test_a_split_the_run_needs_is_required(tmp_path):
    preds = _write(tmp_path / "val.jsonl", [{"dialogue_id": "a", "response": "好"}])
    cfg = _external_config(tmp_path, predictions={"val": str(preds)}, scores={"val": str(preds)})
    assert workflow_config_problems(cfg, SCHEMA)[:2] == [
        "baselines.mine.predictions: no file for split 'test' (the run needs ['test'])",
        "baselines.mine.scores: no file for split 'test' (the run needs ['test'])"]


# ---- a real run (about a minute and a half: the demo data, two rows scored) ---------------------

def _snakemake(work: Path, cfg: dict, *args: str) -> subprocess.CompletedProcess:
    (work / "config.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "snakemake", *args, "--cores", "2", "--directory",
                           str(work), "--snakefile", str(ROOT / "Snakefile"), "--configfile",
                           str(work / "config.yaml")],
                          capture_output=True, text=True, timeout=900)


TARGETS = ("results/tables/table3.csv", "results/tables/ranking_test.csv",
           "results/human_eval/table4/key.json", "results/report/figure4.html")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The demo data, then two external rows: ``mine`` answers each test dialogue with its first
    reference and scores the references above the other candidates; ``other`` says 好."""
    work = tmp_path_factory.mktemp("external")
    cfg = _demo()
    cfg.pop("paper_tables", None)                      # Table 6's tiny CLIP: not needed here
    cfg["evaluation"]["claims"]["files"] = []          # the demo's claims name trained rows
    res = _snakemake(work, cfg, "results/data/test_references.jsonl",
                     "results/ranking/test.candidates.json")
    assert res.returncode == 0, res.stderr[-3000:]
    refs = [json.loads(x) for x in (work / "results/data/test_references.jsonl").read_text().splitlines()]
    cands = json.loads((work / "results/ranking/test.candidates.json").read_text())
    mine = _write(work / "mine.jsonl", [{"dialogue_id": r["dialogue_id"], "response": r["references"][0]}
                                        for r in refs])
    other = _write(work / "other.jsonl", [{"dialogue_id": r["dialogue_id"], "response": "好"} for r in refs])
    scores = _write(work / "scores.jsonl", [
        {"dialogue_id": d["dialogue_id"],
         "loglik": [0.0 if i in d["references"] else -1.0 for i in range(cands["n_candidates"])]}
        for d in cands["dialogues"]])
    cfg["baselines"] = {
        "mine": {"label": "My model", "family": "external", "predictions": {"test": str(mine)},
                 "scores": {"test": str(scores)}},
        "other": {"label": "Other", "family": "external", "predictions": {"test": "other.jsonl"}}}
    cfg["human_eval"]["baselines"] = None
    res = _snakemake(work, cfg, *TARGETS)
    assert res.returncode == 0, res.stderr[-5000:]
    return work, cfg


@pytest.mark.slow
def test_an_external_row_is_scored_like_any_row(run):
    from tiktalk.metrics.evaluate import evaluate_files

    work, _ = run
    r = work / "results"
    got = json.loads((r / "metrics/mine/test.json").read_text())
    want = evaluate_files(work / "mine.jsonl", r / "data/test_references.jsonl", work / "cli.json",
                          "per-reference")
    shared = {k for k in want if k in got}
    assert {"bleu_1", "bleu_4", "meteor", "rouge_l", "cider", "dist_1"} <= shared
    assert {k: got[k] for k in shared} == {k: want[k] for k in shared}
    assert got["bleu_1"] > json.loads((r / "metrics/other/test.json").read_text())["bleu_1"]
    table3 = (r / "tables/table3.csv").read_text(encoding="utf-8")
    assert "My model" in table3 and "Other" in table3
    ranking = (r / "tables/ranking_test.csv").read_text(encoding="utf-8")
    assert "My model" in ranking and "Other" not in ranking     # ranked only with scores
    rank = json.loads((r / "ranking/mine/test.json").read_text())["metrics"]
    # the 5 references tie at the top: ranks 1..5, expected 3 each; Recall@1 holds one of 5
    assert (rank["mean_rank"], rank["recall_at_1"], rank["recall_at_5"]) == pytest.approx((3.0, 20.0, 100.0))
    key = json.loads((r / "human_eval/table4/key.json").read_text())
    assert {"mine", "other"} <= set(json.dumps(key).replace('"', " ").split())
    assert "好" in (r / "report/figure4.html").read_text(encoding="utf-8")


@pytest.mark.slow
def test_editing_one_rows_file_rescores_that_row_only(run):
    work, cfg = run
    path = work / "mine.jsonl"
    original = path.read_text(encoding="utf-8")
    lines = original.splitlines()
    first = json.loads(lines[0])
    lines[0] = json.dumps({**first, "response": first["response"] + "啊"}, ensure_ascii=False)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        res = _snakemake(work, cfg, "-n", *TARGETS)
    finally:
        path.write_text(original, encoding="utf-8")
    assert res.returncode == 0, res.stderr[-3000:]
    jobs = {line.split()[-1].rstrip(":") for line in res.stdout.splitlines()
            if line.startswith(("rule ", "localrule "))}
    wildcards = [line.strip() for line in res.stdout.splitlines() if "wildcards:" in line]
    assert {"external_predictions", "score", "table3"} <= jobs
    assert not jobs & {"external_ranking", "ranking_table"}      # the scores did not change
    assert all("other" not in w for w in wildcards), wildcards
