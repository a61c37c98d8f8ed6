"""Seeds through the real DAG (slow, ~2 minutes): two tiny rows trained with two seeds each on
the demo data; the seeds' outputs differ, Table 3 aggregates them, and changing the seed list
schedules only the new seed's jobs and the tables made from every seed."""

from __future__ import annotations

import json
import statistics

import pandas as pd
import pytest
import yaml

from dag_helpers import ROOT, snakemake
from test_rerun_precision import dry_run_jobs

pytestmark = pytest.mark.slow
TARGETS = ("results/tables/table3.csv", "results/tables/claims.csv",
           "results/plots/training_curves.png")
ROWS = ("text", "dialogpt")
AGGREGATES = {"bootstrap", "table3", "claims", "training_curves"}


def config(seeds: list[int]) -> dict:
    """The demo config with two of its rows, 4 epochs each, and ``seeds``."""
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text(encoding="utf-8"))
    cfg["baselines"] = {b: cfg["baselines"][b] for b in ROWS}
    for b in ROWS:
        cfg["baselines"][b]["params"]["train"] = {**cfg["baselines"][b]["params"]["train"], "epochs": 4}
    cfg.pop("paper_tables", None)
    cfg["seeds"] = seeds
    return cfg


def write(tmp_path, cfg) -> None:
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")


def planned(tmp_path) -> set[tuple[str, str]]:
    args = ("--snakefile", str(ROOT / "Snakefile"), "--configfile", str(tmp_path / "config.yaml"))
    return {(j["rule"], j["wildcards"]) for j in dry_run_jobs(tmp_path, *TARGETS, *args)}


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("seeds")
    write(tmp_path, config([13, 14]))
    res = snakemake(tmp_path, *TARGETS)
    assert res.returncode == 0, (res.stdout[-3000:], res.stderr[-5000:])
    return tmp_path


def test_each_seed_is_its_own_run_and_the_outputs_differ(two_seeds):
    r = two_seeds / "results"
    for b in ROWS:
        assert (r / "models" / b / "model.pt").exists() and (r / "models" / f"{b}.seed14" / "model.pt").exists()
        base = (r / "predictions" / b / "test.jsonl").read_text(encoding="utf-8")
        other = (r / "predictions" / f"{b}.seed14" / "test.jsonl").read_text(encoding="utf-8")
        assert base != other, f"{b}: seeds 13 and 14 decoded the same responses"
        logs = [(r / "logs" / "train_baseline" / f"{run}.log").read_text() for run in (b, f"{b}.seed14")]
        assert logs[0] != logs[1]


def test_table3_aggregates_the_seeds(two_seeds):
    r = two_seeds / "results"
    table = pd.read_csv(r / "tables" / "table3.csv")
    ours = table[table["source"] == "ours"].set_index("baseline")
    assert sorted(ours.index) == sorted(ROWS)
    for b in ROWS:
        runs = [json.loads((r / "metrics" / run / "test.json").read_text()) for run in (b, f"{b}.seed14")]
        assert runs[0] != runs[1]
        for key, col in (("bleu_2", "BLEU-2"), ("rouge_l", "Rouge-L"), ("dist_2", "Dist-2")):
            values = [m[key] for m in runs]
            assert ours.loc[b, col] == pytest.approx(sum(values) / 2, abs=0.005)
            assert ours.loc[b, f"{col}_sd"] == pytest.approx(statistics.stdev(values), abs=0.005)
            assert ours.loc[b, f"{col}_low"] <= ours.loc[b, f"{col}_high"]
        assert ours.loc[b, "seeds"] == 2
    md = (r / "tables" / "table3.md").read_text(encoding="utf-8")
    assert "±" in md and "2 training seeds" in md
    claims = pd.read_csv(r / "tables" / "claims.csv")
    # two rows only: the claims that name other rows are not run; Table 4's need ratings
    assert set(claims["verdict"]) <= {"not run", "needs ratings", "holds", "reversed",
                                      "not distinguishable"}
    assert (r / "plots" / "training" / "text.png").exists()


def test_changing_the_seeds_reruns_only_the_new_seeds(two_seeds):
    assert planned(two_seeds) == set(), "a finished run must leave nothing to do"
    write(two_seeds, config([13, 14, 15]))
    got = planned(two_seeds)
    new = {(rule, f"baseline={b}.seed15" + (", split=test" if rule != "train_baseline" else ""))
           for b in ROWS for rule in ("train_baseline", "predict", "score")}
    assert {k for k in got if k[0] not in AGGREGATES} == new
    assert {k[0] for k in got} - {k[0] for k in new} == AGGREGATES
    # a seed taken out: no training, decoding or scoring, only the tables of the others
    write(two_seeds, config([13]))
    assert {k[0] for k in planned(two_seeds)} == AGGREGATES
    write(two_seeds, config([13, 14]))
