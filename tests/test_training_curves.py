"""Training curves from train_log.jsonl (tiktalk.report.curves)."""

from __future__ import annotations

import numpy as np
import pytest

from tiktalk.io import write_jsonl
from tiktalk.report.curves import TRAIN_LOG, read_curve, write_curves
from tiktalk.training.trainer import LOG_NAME


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
