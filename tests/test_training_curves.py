"""Training curves from train_log.jsonl (tiktalk.report.curves), Table 3 over seeds
(tiktalk.report.seeds) and the run names of the seeds (tiktalk.workflow)."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from tiktalk.io import write_jsonl
from tiktalk.metrics.bootstrap import Replicates, interval
from tiktalk.report.curves import TRAIN_LOG, read_curve, write_curves
from tiktalk.report.paper import TABLE3_METRIC_KEYS
from tiktalk.report.seeds import rows_over_seeds
from tiktalk.training.trainer import LOG_NAME
from tiktalk.workflow import run_baseline, run_name, run_seed, seed_list, seed_runs


def log_records(epochs=3, steps_per_epoch=4, log_every=2, seed=0):
    """Records as the trainer writes them: every log_every steps, then one closing each epoch
    (with val_loss and what the epoch's time depends on)."""
    rng = np.random.default_rng(seed)
    out, step = [], 0
    for e in range(epochs):
        for _ in range(steps_per_epoch):
            step += 1
            if step % log_every == 0:
                out.append({"epoch": e, "step": step, "loss": 5.0 / step + rng.uniform(0, 0.1),
                            "val_loss": None, "lr": 1e-3, "seconds": step})
        out.append({"epoch": e, "step": step, "loss": 4.0 / (e + 1), "val_loss": 4.5 / (e + 1),
                    "lr": 1e-3, "seconds": step, "samples": 64, "batch_size": 16})
    return out


def test_the_log_name_is_the_trainers():
    assert TRAIN_LOG == LOG_NAME


def test_read_curve_keeps_the_last_record_of_a_step(tmp_path):
    records = log_records()
    # a resumed job appends: it repeats epoch 2 (steps 9..12) with other losses
    resumed = [dict(r, loss=r["loss"] + 1) for r in records if r["epoch"] == 2]
    write_jsonl(tmp_path / TRAIN_LOG, records + resumed)
    curve = read_curve(tmp_path / TRAIN_LOG)
    assert [s for s, _ in curve.steps] == sorted({r["step"] for r in records})
    assert [s for s, _ in curve.epochs] == [4, 8, 12] == [s for s, _ in curve.val]
    assert curve.val[0][1] == 4.5 and curve.epochs[2][1] == pytest.approx(4.0 / 3 + 1)
    write_jsonl(tmp_path / "bad.jsonl", [{"epoch": 0, "loss": 1.0}])
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        read_curve(tmp_path / "bad.jsonl")


def test_write_curves_one_figure_per_row_and_the_overlay(tmp_path):
    models = {}
    for b, runs in {"maria": ["maria", "maria.seed14"], "livebot": ["livebot"]}.items():
        models[b] = {}
        for i, run in enumerate(runs):
            write_jsonl(tmp_path / run / TRAIN_LOG, log_records(seed=i))
            models[b][f"seed {13 + i}"] = tmp_path / run / "model.pt"
    outs = {b: tmp_path / "plots" / f"{b}.png" for b in models}
    curves = write_curves(models, {"maria": "Maria"}, outs, tmp_path / "overlay.png")
    assert list(curves["maria"]) == ["seed 13", "seed 14"]
    for path in [*outs.values(), tmp_path / "overlay.png"]:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


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
