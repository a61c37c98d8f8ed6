"""The shared training loop: convergence, frozen params, SIGTERM resume, DDP on CPU (gloo)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from tiktalk.training.trainer import (
    EpochSampler, TrainConfig, TrainingInterrupted, load_checkpoint, move_to_device, train,
)

torch.set_num_threads(1)

# A tiny regression problem with dropout, so resume must restore the RNG stream too.
TOY = textwrap.dedent('''
    import torch
    from torch import nn

    class Toy(nn.Module):
        def __init__(self):
            super().__init__()
            self.frozen = nn.Linear(4, 4)
            self.frozen.requires_grad_(False)
            self.net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 1))

        def forward(self, batch):
            pred = self.net(self.frozen(batch["x"])).squeeze(-1)
            return ((pred - batch["y"]) ** 2).mean()

    def make_data(n=64):
        g = torch.Generator().manual_seed(123)
        x = torch.randn(n, 4, generator=g)
        y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0])
        return [{"x": x[i], "y": y[i]} for i in range(n)]

    def collate(items):
        return {"x": torch.stack([it["x"] for it in items]), "y": torch.stack([it["y"] for it in items])}

    def make_model():
        torch.manual_seed(7)
        return Toy()
''')


@pytest.fixture()
def toy(tmp_path, monkeypatch):
    (tmp_path / "toy_mod.py").write_text(TOY)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    import toy_mod
    importlib.reload(toy_mod)
    return toy_mod


def test_config_from_dict_rejects_unknown_keys():
    cfg = TrainConfig.from_dict({"epochs": 3, "lr": 1e-3, "adam_betas": [0.9, 0.98]})
    assert cfg.epochs == 3 and cfg.adam_betas == (0.9, 0.98)
    with pytest.raises(ValueError, match="unknown key 'epoch'; did you mean 'epochs'"):
        TrainConfig.from_dict({"epoch": 3})
    with pytest.raises(ValueError, match="baselines.x.params.train: unknown key 'lrr'"):
        TrainConfig.from_dict({"lrr": 3}, "baselines.x.params.train")
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig.from_dict({"lr_schedule": "cosine"})
    with pytest.raises(ValueError, match="warmup_ratio"):
        TrainConfig(warmup_ratio=1.0)            # validated however it is built
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.epochs = 4


def test_move_to_device_nested():
    batch = {"a": torch.ones(2), "b": [torch.zeros(1), ("s", torch.ones(1))], "c": 3}
    out = move_to_device(batch, "cpu")
    assert out["c"] == 3 and out["b"][1][0] == "s" and torch.equal(out["b"][1][1], torch.ones(1))


def test_epoch_sampler_rank_slices_and_skip():
    full = EpochSampler(10, seed=1, epoch=2).indices()
    assert sorted(full) == list(range(10))
    assert full != EpochSampler(10, seed=1, epoch=3).indices()
    r0 = EpochSampler(10, seed=1, epoch=2, rank=0, world_size=3).indices()
    r1 = EpochSampler(10, seed=1, epoch=2, rank=1, world_size=3).indices()
    r2 = EpochSampler(10, seed=1, epoch=2, rank=2, world_size=3).indices()
    assert len(r0) == len(r1) == len(r2) == 4
    assert set(r0) | set(r1) | set(r2) == set(range(10))
    assert EpochSampler(10, seed=1, epoch=2, skip=4).indices() == full[4:]


def test_loss_decreases_and_frozen_params_unchanged(toy, tmp_path):
    model = toy.make_model()
    frozen_before = {k: v.clone() for k, v in model.frozen.state_dict().items()}
    cfg = TrainConfig(epochs=10, batch_size=8, lr=5e-2, warmup_ratio=0.1, log_every=4, seed=0,
                      max_grad_norm=5.0)
    hist = train(model, toy.make_data(), toy.collate, cfg, tmp_path / "run",
                 val_set=toy.make_data(16))
    assert len(hist) == 10
    assert hist[-1]["train_loss"] < 0.3 * hist[0]["train_loss"]
    assert hist[-1]["val_loss"] is not None and hist[-1]["val_loss"] < hist[0]["val_loss"]
    assert hist[-1]["lr"] == pytest.approx(0.0)  # linear decay to zero
    for k, v in model.frozen.state_dict().items():
        assert torch.equal(v, frozen_before[k])
    lines = [json.loads(x) for x in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert {"epoch", "step", "loss", "val_loss", "lr", "seconds"} <= set(lines[0])
    assert sum(1 for r in lines if r["val_loss"] is not None) == 10
    ckpt = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert ckpt["epoch"] == 10 and ckpt["batches_done"] == 0 and ckpt["global_step"] == 10 * 8
    # Re-running a finished run is a no-op that returns the stored history.
    again = train(toy.make_model(), toy.make_data(), toy.collate, cfg, tmp_path / "run")
    assert again == hist


def test_log_lines_give_totals_rounded_loss_and_eta(toy, tmp_path, caplog):
    cfg = TrainConfig(epochs=3, batch_size=8, lr=1e-2, log_every=5, seed=0)
    with caplog.at_level(logging.INFO, logger="tiktalk.training"):
        hist = train(toy.make_model(), toy.make_data(), toy.collate, cfg, tmp_path / "run",
                     val_set=toy.make_data(16))
    lines = [r.getMessage() for r in caplog.records if r.name == "tiktalk.training"]
    # 64 samples / batch 8 = 8 steps per epoch, 24 in all; a line every 5 steps
    step_lines = [ln for ln in lines if "done" not in ln]
    assert [re.match(r"epoch (\d)/3, step (\d+)/24: loss ", ln).groups() for ln in step_lines] == [
        ("1", "5"), ("2", "10"), ("2", "15"), ("3", "20")]
    done_lines = [ln for ln in lines if "done" in ln]
    assert len(done_lines) == 3 and done_lines[-1].startswith("epoch 3/3 done, step 24/24: train loss ")
    recs = [json.loads(x) for x in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    for line, rec in zip(done_lines, [r for r in recs if r["val_loss"] is not None]):
        # the loss to 4 significant digits, not the float's repr
        assert f"train loss {rec['loss']:.4g}, val loss {rec['val_loss']:.4g}, lr " in line
        assert re.search(r", ETA (\d+s|\d+m\d\ds|\d+h\d\dm)$", line), line
        assert rec["epochs"] == 3 and rec["total_steps"] == 24 and rec["eta_seconds"] >= 0
    assert recs[-1]["eta_seconds"] == 0 and recs[-1]["loss"] == hist[-1]["train_loss"]
    assert all(f"loss {r['loss']:.4g}, lr" in ln for ln, r in
               zip(step_lines, [r for r in recs if r["val_loss"] is None]))


def test_a_fresh_run_starts_a_fresh_train_log(toy, tmp_path):
    """A run whose checkpoint was discarded (other params or code: the workflow drops it)
    replaces the earlier run's train_log.jsonl: Table 7 reads its epoch times from there, and
    a shorter re-run had left the earlier run's later epochs in it."""
    out = tmp_path / "run"
    train(toy.make_model(), toy.make_data(), toy.collate,
          TrainConfig(epochs=3, batch_size=8, lr=1e-2, seed=0), out, val_set=toy.make_data(16))
    shutil.rmtree(out / "checkpoints")
    train(toy.make_model(), toy.make_data(), toy.collate,
          TrainConfig(epochs=2, batch_size=16, lr=1e-2, seed=0), out, val_set=toy.make_data(16))
    recs = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    closing = [r for r in recs if r["val_loss"] is not None]
    assert [r["epoch"] for r in closing] == [0, 1]
    assert {r["started"] for r in recs} == {closing[0]["started"]}
    assert {r["batch_size"] for r in closing} == {16}


def test_no_trainable_params_is_an_error(toy, tmp_path):
    model = toy.make_model().requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        train(model, toy.make_data(8), toy.collate, TrainConfig(), tmp_path)


RUNNER = textwrap.dedent('''
    import os, sys, time, logging
    import torch
    logging.basicConfig(level=logging.INFO)
    torch.set_num_threads(1)
    sys.path.insert(0, sys.argv[1])
    import toy_mod
    from tiktalk.training.trainer import TrainConfig, train

    out, marker = sys.argv[2], sys.argv[3]
    calls = [0]

    def slow_collate(items):
        calls[0] += 1
        if marker != "-" and calls[0] == 13:       # epoch 1, batch 5 (8 batches per epoch)
            open(marker, "w").write("x")
            for _ in range(400):                    # the parent's SIGTERM arrives here
                if os.path.exists(marker + ".sent"):
                    break
                time.sleep(0.05)
        return toy_mod.collate(items)

    cfg = TrainConfig(epochs=3, batch_size=8, lr=1e-2, log_every=1, seed=3, warmup_ratio=0.2)
    train(toy_mod.make_model(), toy_mod.make_data(), slow_collate, cfg, out)
''')


def _run(args, **kw):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **kw)


def test_sigterm_mid_epoch_then_resume_matches_uninterrupted(toy, tmp_path):
    runner = tmp_path / "runner.py"
    runner.write_text(RUNNER)
    mod_dir = str(tmp_path)
    killed_out, marker = tmp_path / "killed", tmp_path / "marker"
    proc = _run([str(runner), mod_dir, str(killed_out), str(marker)])
    ref = _run([str(runner), mod_dir, str(tmp_path / "ref"), "-"])
    deadline = time.time() + 60
    while not marker.exists():
        assert proc.poll() is None, proc.stdout.read()
        assert time.time() < deadline, "runner never reached the marker"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    Path(str(marker) + ".sent").write_text("x")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, out
    ckpt = load_checkpoint(killed_out / "checkpoints" / "last.pt")
    assert ckpt["epoch"] == 1 and ckpt["batches_done"] == 5, (ckpt["epoch"], ckpt["batches_done"])
    assert ckpt["global_step"] == 8 + 5
    # Started again (no signal this time): continues epoch 1 at batch 6 and finishes.
    resumed = _run([str(runner), mod_dir, str(killed_out), "-"])
    out2, _ = resumed.communicate(timeout=60)
    assert resumed.returncode == 0, out2
    assert "resumed from" in out2
    out3, _ = ref.communicate(timeout=60)
    assert ref.returncode == 0, out3
    a = load_checkpoint(killed_out / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "ref" / "checkpoints" / "last.pt")
    assert a["epoch"] == b["epoch"] == 3 and a["global_step"] == b["global_step"] == 24
    for k in b["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    steps = [json.loads(x)["step"] for x in (killed_out / "train_log.jsonl").read_text().splitlines()
             if json.loads(x)["val_loss"] is None and "step" in json.loads(x)]
    assert steps[-1] == 24


def test_signal_in_process_raises_training_interrupted(toy, tmp_path):
    calls = [0]

    def collate(items):
        calls[0] += 1
        if calls[0] == 3:
            os.kill(os.getpid(), signal.SIGUSR1)
        return toy.collate(items)

    cfg = TrainConfig(epochs=2, batch_size=8, lr=1e-2, seed=0)
    with pytest.raises(TrainingInterrupted) as ei:
        train(toy.make_model(), toy.make_data(), collate, cfg, tmp_path)
    assert ei.value.code == 128 + signal.SIGUSR1
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["batches_done"] == 3
    # handlers restored
    assert signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, signal.default_int_handler)


def _ddp_worker(rank, world, port, mod_dir, out, result_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world),
                      RANK=str(rank), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    sys.path.insert(0, mod_dir)
    import toy_mod

    model = toy_mod.make_model()
    cfg = TrainConfig(epochs=2, batch_size=4, lr=1e-2, log_every=2, seed=0, device="cpu")
    hist = train(model, toy_mod.make_data(), toy_mod.collate, cfg, out, val_set=toy_mod.make_data(8))
    torch.save({"state": model.state_dict(), "hist": hist}, os.path.join(result_dir, f"rank{rank}.pt"))


def test_ddp_two_processes_gloo(toy, tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "ddp"
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path), str(out), str(tmp_path)), nprocs=2,
             join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=False)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=False)
    for k in r0["state"]:  # gradients were averaged: both replicas hold the same weights
        assert torch.equal(r0["state"][k], r1["state"][k]), k
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert strip(r0["hist"]) == strip(r1["hist"]) and r0["hist"][-1]["val_loss"] is not None
    ckpt = load_checkpoint(out / "checkpoints" / "last.pt")
    assert ckpt["world_size"] == 2 and ckpt["global_step"] == 2 * 8  # 64 samples / 2 ranks / bs 4
    assert set(ckpt["rng"]) == {0, 1}
    # one writer: one log line per logging point, no duplicates from rank 1
    recs = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert len(recs) == len({(r["step"], r["val_loss"] is None) for r in recs}) == 8 + 2
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["last.pt"]
