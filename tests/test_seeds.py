"""Seeds: run names (tiktalk.workflow), Table 3 over seeds (tiktalk.report.seeds), and the DAG
of a config with two seeds (a dry run; tests/test_seeds_dag.py runs one)."""

from __future__ import annotations

import re
import statistics
from pathlib import Path

import numpy as np
import pytest

from tiktalk.metrics.bootstrap import Replicates, interval
from tiktalk.report.paper import TABLE3_METRIC_KEYS
from tiktalk.report.seeds import rows_over_seeds
from tiktalk.workflow import run_baseline, run_name, run_seed, seed_list, seed_runs

from test_dag import demo_config, job_counts, snakemake, write_config


def test_rows_over_seeds():
    """The value is the mean over seeds (the run's own score with one seed, exactly); the
    interval that of the seed mean on each resample; the spread the sd over seeds."""
    keys = TABLE3_METRIC_KEYS
    rng = np.random.default_rng(0)
    runs = ("a", "a.seed14", "b")
    points = rng.uniform(1, 30, size=(3, len(keys)))
    reps = points[:, None, :] + rng.normal(0, 1, size=(3, 500, len(keys)))
    rep = Replicates(500, 0, 50, runs, tuple(keys), points, reps)
    metrics = {r: {**{k: float(points[i, j]) for j, k in enumerate(keys)}, "n": 50}
               for i, r in enumerate(runs)}
    values, spread = rows_over_seeds(metrics, {"a": ["a", "a.seed14"], "b": ["b"]}, rep)
    assert values["b"] == metrics["b"]                        # one seed: exactly its score
    k = "cider"
    assert values["a"][k] == pytest.approx((metrics["a"][k] + metrics["a.seed14"][k]) / 2)
    assert spread["a"].sd[k] == pytest.approx(statistics.stdev([metrics["a"][k], metrics["a.seed14"][k]]))
    j = keys.index(k)
    assert (spread["a"].low[k], spread["a"].high[k]) == interval((reps[0, :, j] + reps[1, :, j]) / 2)
    assert spread["a"].seeds == 2 and spread["b"].seeds == 1 and spread["b"].sd == {}
    with pytest.raises(ValueError, match="baseline 'c'.*c.seed14"):
        rows_over_seeds(metrics, {"c": ["c.seed14"]}, rep)


def test_run_names():
    assert seed_list({"seed": 13}) == [13]
    assert seed_list({"seed": 13, "seeds": [13, 14, 15]}) == [13, 14, 15]
    with pytest.raises(ValueError, match="distinct"):
        seed_list({"seed": 13, "seeds": [14, 14]})
    assert run_name("maria", 13, 13) == "maria" and run_name("maria", 14, 13) == "maria.seed14"
    assert run_baseline("maria_c3kg.seed14") == "maria_c3kg" and run_baseline("maria") == "maria"
    assert run_seed("maria.seed14", 13) == 14 and run_seed("maria", 13) == 13
    assert seed_runs(["a", "b"], [14, 13], 13) == {"a": ["a.seed14", "a"], "b": ["b.seed14", "b"]}


def test_a_dag_with_two_seeds(tmp_path):
    """Every Table 3 row trained, decoded and scored once more, as `<row>.seed14`, the BLIP-2
    rows on ChatGLM-6B's seed-14 run; Table 7's M5 (no Table 3 row), the ranking and the other
    stages once; Table 3, the claims and the curves read every run."""
    cfg = demo_config()
    cfg["seeds"] = [13, 14]
    res = snakemake("-n", "--cores", "2", "--directory", str(tmp_path), "--snakefile",
                    str(Path(__file__).resolve().parents[1] / "Snakefile"), "--configfile",
                    str(write_config(tmp_path, cfg)))
    assert res.returncode == 0, res.stderr[-3000:]
    counts = job_counts(res.stdout)
    rows = [b for b, c in cfg["baselines"].items() if c.get("table3", True)]
    n = len(cfg["baselines"])
    assert counts["train_baseline"] == counts["predict"] == counts["score"] == n + len(rows)
    assert counts["rank"] == n and counts["table3"] == counts["bootstrap"] == counts["claims"] == 1
    blocks = res.stdout.split("\n\n")
    blip2 = next(b for b in blocks if re.search(r"wildcards: baseline=blip2_img\.seed14$", b, re.M)
                 and "rule train_baseline" in b)
    assert "results/models/chatglm.seed14/model.pt" in blip2
    table3 = next(b for b in blocks if "rule table3:" in b)
    assert all(f"results/metrics/{r}.seed14/test.json" in table3 for r in rows)
    assert "maria_audio_c3kg.seed14" not in res.stdout
