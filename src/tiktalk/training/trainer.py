"""The one training loop every baseline uses.

Contract with the model: ``loss = model(batch)`` returns a scalar tensor, where ``batch`` is
whatever ``collate_fn`` returns (dicts / lists / tuples of tensors are moved to the device by
:func:`move_to_device`). Only parameters with ``requires_grad=True`` are optimised (AdamW; no
weight decay on biases and LayerNorm/1-d weights), so frozen encoders stay frozen.

The loop reads top to bottom (:func:`train` -> :func:`_train`): seed, plan the schedule, build
the optimizer, :func:`restore` the last checkpoint, then per epoch :func:`run_epoch`,
:func:`evaluate_loss` on the validation set, :func:`end_epoch` (history and log line) and
:func:`checkpoint`. Three small state objects carry what moves between them: :class:`Plan`
(batches and optimizer steps, fixed for the run), :class:`Optim` (optimizer, scheduler, grad
scaler) and :class:`~tiktalk.training.checkpoint.Progress` (epoch, position inside it, global
step, history: exactly what a checkpoint restores).

Two modules beside this one hold what the loop leans on:

* :mod:`tiktalk.training.checkpoint`: ``out_dir/checkpoints/last.pt``, written atomically at
  the end of every epoch (model, optimizer, scheduler, grad scaler, epoch, position inside the
  epoch, global step, RNG states, history) and loaded on start, so finished epochs are
  skipped; and the sample order (:class:`EpochSampler`: epoch ``e`` is a permutation seeded
  with ``seed + e``, resuming skips the batches already consumed). Randomness inside
  ``model(batch)`` (dropout, token masking) uses torch's global RNG, whose CPU/CUDA states are
  checkpointed, so a resumed run reproduces an uninterrupted one exactly when ``collate_fn``
  itself is deterministic and ``num_workers == 0`` (with workers, order is still exact but
  per-worker RNG in collate is not).
* :mod:`tiktalk.training.distributed`: DDP under ``torchrun`` (``WORLD_SIZE > 1``: the process
  group, nccl on CUDA, gloo on CPU; each rank reads its own slice of the epoch's permutation;
  only rank 0 writes checkpoints and logs) and the stop signals: SIGTERM / SIGUSR1 (SLURM
  pre-emption, ``--signal``) make the loop finish the current optimizer step, save a mid-epoch
  checkpoint (with the number of batches already consumed in the epoch) and raise
  :class:`TrainingInterrupted` (a ``SystemExit`` with code 128+signum), so the process exits
  non-zero and a requeued job resumes the same epoch in the same sample order. All ranks agree
  on the signal (all-reduce), so every rank stops at the same step.

Monitoring: every ``log_every`` optimizer steps and at the end of every epoch, one log line
``epoch i/N, step s/S: loss 0.6671, lr 3e-05, ETA 4m12s`` (S: optimizer steps of the whole run;
loss to 4 significant digits; the ETA from the mean wall time per step so far in this process,
evaluation and checkpoints included) and one record in ``out_dir/train_log.jsonl``:
``{"epoch", "step", "loss", "val_loss", "lr", "seconds", "epochs", "total_steps",
"eta_seconds"}`` (``epoch`` 0-based; ``val_loss`` None on step records; ``seconds`` since the
loop started in this process). The record that closes an epoch (the last one of its epoch) also
says what its time depends on: ``samples``, ``batch_size``, ``grad_accum_steps``,
``world_size``, ``device`` ("cuda" | "cpu"), ``device_name`` and ``threads``; and ``started``,
the Unix time at which this process's loop started (records of one process share it).

Public API (importable from here)::

    TrainConfig(...); TrainConfig.from_dict(d)       # frozen; unknown keys are an error
    train(model, train_set, collate_fn, cfg, out_dir, val_set=None, params=None) -> list[dict]
    move_to_device(obj, device)
    EpochSampler(n, seed, epoch, shuffle=True, rank=0, world_size=1, skip=0)  # for own loaders
    load_checkpoint(path); TrainingInterrupted
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import nn

from tiktalk.logs import format_duration
from tiktalk.settings import from_mapping
from tiktalk.training.checkpoint import (
    CHECKPOINT_NAME,
    EpochSampler,
    Progress,
    load_checkpoint,
    loader_generator,
    restore_checkpoint,
    save_checkpoint,
)
from tiktalk.training.distributed import Dist, SignalFlag, TrainingInterrupted, unwrap, wrap_ddp

__all__ = ["TrainConfig", "train", "move_to_device", "EpochSampler", "load_checkpoint",
           "TrainingInterrupted", "evaluate_loss", "LOG_NAME", "CHECKPOINT_NAME"]

log = logging.getLogger("tiktalk.training")

LOG_NAME = "train_log.jsonl"


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 1
    max_steps: int | None = None       # stop after this many optimizer steps (a bounded run,
                                       # e.g. the scale rehearsal); the schedule spans them
    batch_size: int = 8
    lr: float = 3e-5                   # paper: linear decay from 3e-5
    weight_decay: float = 0.0          # Maria: 0.05
    warmup_ratio: float = 0.0
    lr_schedule: str = "linear"        # "linear" (warm-up then linear decay to 0) | "constant"
    grad_accum_steps: int = 1
    max_grad_norm: float | None = 1.0  # None or <= 0: no clipping
    amp: bool = False                  # CUDA autocast (+ GradScaler for fp16); ignored on CPU
    amp_dtype: str = "float16"         # "float16" | "bfloat16"
    seed: int = 0
    num_workers: int = 0
    log_every: int = 50                # optimizer steps between log lines
    checkpoint_every_epoch: bool = True
    shuffle: bool = True
    device: str = "auto"               # "auto" (cuda if available) | "cpu" | "cuda" | "cuda:1"
    find_unused_parameters: bool = False  # DDP option, for models with conditional branches
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8

    def __post_init__(self) -> None:
        self.validate()

    @classmethod
    def from_dict(cls, d: Mapping | None, where: str | None = None) -> "TrainConfig":
        """A config block (e.g. a baseline's ``params.train``) as a TrainConfig; an unknown key
        is an error naming ``where`` and the closest field (:func:`tiktalk.settings.from_mapping`)."""
        return from_mapping(cls, d, where)

    def validate(self) -> None:
        if (self.epochs < 0 or self.batch_size < 1 or self.grad_accum_steps < 1
                or (self.max_steps is not None and self.max_steps < 1)):
            raise ValueError(f"bad TrainConfig: {self}")
        if self.lr_schedule not in ("linear", "constant"):
            raise ValueError(f"lr_schedule must be 'linear' or 'constant', got {self.lr_schedule!r}")
        if self.amp_dtype not in ("float16", "bfloat16"):
            raise ValueError(f"amp_dtype must be 'float16' or 'bfloat16', got {self.amp_dtype!r}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")


# --------------------------------------------------------------------------------------------
# the loop


def train(model: nn.Module, train_set, collate_fn: Callable | None, cfg: TrainConfig | Mapping,
          out_dir: str | os.PathLike, val_set=None, params: dict | None = None) -> list[dict]:
    """Train ``model`` on ``train_set``; return the per-epoch history.

    History records: ``{"epoch", "global_step", "train_loss", "val_loss", "lr", "seconds"}``
    (``val_loss`` None without ``val_set``). ``params`` (e.g. the baseline's config block) is
    stored in the checkpoint for provenance. Writes ``out_dir/train_log.jsonl`` and
    ``out_dir/checkpoints/last.pt``; the model is left on the training device with the final
    weights, in eval mode.
    """
    if not isinstance(cfg, TrainConfig):
        cfg = TrainConfig.from_dict(cfg)
    out_dir = Path(out_dir)
    dist_ = Dist(cfg.device)
    try:
        if dist_.is_main:
            (out_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        dist_.barrier()
        return _train(_Run(cfg=cfg, dist=dist_, out_dir=out_dir, params=params,
                           collate_fn=collate_fn), model, train_set, val_set)
    finally:
        dist_.close()


def _train(run: "_Run", model: nn.Module, train_set, val_set) -> list[dict]:
    cfg, dist_ = run.cfg, run.dist
    _seed_everything(cfg.seed)
    model.to(dist_.device)
    model.train()
    plan = Plan.for_run(len(train_set), dist_.world, cfg)
    optim = Optim.build(model, cfg, plan.total_steps, dist_.device)
    progress = restore(run, model, optim)
    train_model = wrap_ddp(model, dist_, cfg.find_unused_parameters)
    pace = _Pace(progress.global_step, plan.total_steps)
    run.setup.update(_setup(cfg, dist_, len(train_set)), started=round(pace.t0, 3))
    with SignalFlag() as stop:
        for epoch in range(progress.epoch, plan.epochs):
            train_loss = run_epoch(run, plan, train_model, optim, progress, pace, epoch, train_set, stop)
            val_loss = None
            if val_set is not None and len(val_set):
                val_loss = evaluate_loss(train_model, val_set, run.collate_fn, cfg, dist_.device, dist_)
            end_epoch(run, plan, optim, progress, pace, epoch, train_loss, val_loss)
            stopping = dist_.any_flag(stop.signum is not None)
            last = epoch == plan.epochs - 1
            if cfg.checkpoint_every_epoch or last or stopping:
                checkpoint(run, train_model, optim, progress)
            if stopping and not last:
                raise TrainingInterrupted(stop.signum or signal.SIGTERM, run.checkpoint_path)
    model.eval()
    return progress.history


def restore(run: "_Run", model: nn.Module, optim: "Optim") -> Progress:
    """Load ``last.pt`` into the model and optimizer when it exists; where to continue from."""
    if not run.checkpoint_path.exists():
        # a fresh run starts a fresh train_log.jsonl: records of an earlier run (other
        # parameters or code, its checkpoint discarded) would mix into Table 7's minutes
        if run.dist.is_main:
            run.log_path.unlink(missing_ok=True)
        return Progress()
    return restore_checkpoint(run.checkpoint_path, run.dist, model, optim)


def run_epoch(run: "_Run", plan: "Plan", train_model: nn.Module, optim: "Optim",
              progress: Progress, pace: "_Pace", epoch: int, train_set, stop: SignalFlag) -> float:
    """One epoch (the rest of it, when resuming mid-epoch); returns the mean training loss of
    the batches run here, over all ranks. On a stop signal: a mid-epoch checkpoint, then
    :class:`TrainingInterrupted`."""
    cfg, dist_, device = run.cfg, run.dist, run.dist.device
    progress.epoch = epoch
    sampler = EpochSampler(len(train_set), cfg.seed, epoch, cfg.shuffle, dist_.rank, dist_.world,
                           skip=progress.batches_done * cfg.batch_size)
    loader = torch.utils.data.DataLoader(
        train_set, batch_size=cfg.batch_size, sampler=sampler, collate_fn=run.collate_fn,
        num_workers=cfg.num_workers, pin_memory=device.type == "cuda",
        persistent_workers=False, generator=loader_generator(cfg.seed, epoch))
    amp_ctx = _autocast(cfg, device)
    window = _LossSum()   # since the last log line
    whole = _LossSum()    # this epoch, in this process
    optim.optimizer.zero_grad(set_to_none=True)
    for batch in loader:
        batch = move_to_device(batch, device, non_blocking=True)
        progress.batches_done += 1
        done = progress.batches_done
        is_step = done % cfg.grad_accum_steps == 0 or done == plan.batches_per_epoch
        sync = train_model.no_sync() if dist_.enabled and not is_step else contextlib.nullcontext()
        with sync:
            with amp_ctx():
                loss = train_model(batch)
            _check_loss(loss, epoch, done)
            optim.scaler.scale(loss / cfg.grad_accum_steps).backward()
        value = float(loss.detach())
        window.add(value)
        whole.add(value)
        if not is_step:
            continue
        optim.step(cfg.max_grad_norm)
        progress.global_step += 1
        if progress.global_step >= plan.total_steps and plan.capped:
            break                                   # max_steps reached inside this epoch
        if cfg.log_every and progress.global_step % cfg.log_every == 0:
            _log_step(run, plan, optim, progress, pace, epoch, window.mean(dist_))
            window = _LossSum()
        if dist_.any_flag(stop.signum is not None) and done < plan.batches_per_epoch:
            checkpoint(run, train_model, optim, progress)
            if dist_.is_main:
                log.warning("checkpointed epoch %d at batch %d/%d; exiting", epoch, done,
                            plan.batches_per_epoch)
            raise TrainingInterrupted(stop.signum or signal.SIGTERM, run.checkpoint_path)
    progress.batches_done = 0
    return whole.mean(dist_)


def end_epoch(run: "_Run", plan: "Plan", optim: "Optim", progress: Progress, pace: "_Pace",
              epoch: int, train_loss: float, val_loss: float | None) -> None:
    """Close an epoch: its history record, its log line and train_log.jsonl record; the
    progress now points at the start of the next epoch."""
    rec = _record(run, plan, optim, progress, pace, epoch, train_loss, val_loss)
    progress.history.append({"epoch": epoch, "global_step": progress.global_step,
                             "train_loss": train_loss, "val_loss": val_loss, "lr": rec["lr"],
                             "seconds": rec["seconds"]})
    progress.epoch, progress.batches_done = epoch + 1, 0
    if run.dist.is_main:
        log.info("epoch %d/%d done, step %d/%d: train loss %s, val loss %s, lr %.3g, ETA %s",
                 epoch + 1, plan.epochs, progress.global_step, plan.total_steps,
                 _sig4(train_loss), _sig4(val_loss), rec["lr"], format_duration(rec["eta_seconds"]))
        _append_log(run.log_path, {**rec, **run.setup})


def checkpoint(run: "_Run", train_model: nn.Module, optim: "Optim", progress: Progress) -> None:
    """Write ``last.pt`` at the position ``progress`` points at (a collective under DDP)."""
    save_checkpoint(run.checkpoint_path, run.dist, train_model, optim, progress,
                    {"train_config": dataclasses.asdict(run.cfg), "params": run.params,
                     "world_size": run.dist.world})


# --------------------------------------------------------------------------------------------
# the loop's state


@dataclass
class _Run:
    """What stays fixed for one call of :func:`train`."""

    cfg: TrainConfig
    dist: Dist
    out_dir: Path
    params: dict | None
    collate_fn: Callable | None
    setup: dict = field(default_factory=dict)   # what every epoch record says about the run

    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / "checkpoints" / CHECKPOINT_NAME

    @property
    def log_path(self) -> Path:
        return self.out_dir / LOG_NAME


@dataclass(frozen=True)
class Plan:
    """Batches and optimizer steps: per rank and epoch, and for the whole run (the schedule)."""

    batches_per_epoch: int
    steps_per_epoch: int
    total_steps: int
    epochs: int = 1                # epochs the run enters (fewer than configured with max_steps)
    capped: bool = False           # max_steps ends the run before the configured epochs

    @classmethod
    def for_run(cls, n_samples: int, world: int, cfg: TrainConfig) -> "Plan":
        per_rank = int(math.ceil(n_samples / world)) if n_samples else 0
        batches = int(math.ceil(per_rank / cfg.batch_size))
        steps = int(math.ceil(batches / cfg.grad_accum_steps)) if batches else 0
        total, epochs = steps * cfg.epochs, cfg.epochs
        capped = cfg.max_steps is not None and steps > 0 and cfg.max_steps < total
        if capped:
            total, epochs = cfg.max_steps, int(math.ceil(cfg.max_steps / steps))
        return cls(batches, steps, max(1, total), epochs, capped)


@dataclass
class Optim:
    """AdamW (no weight decay on biases / 1-d weights), the LR schedule and the grad scaler."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    use_scaler: bool

    @classmethod
    def build(cls, model: nn.Module, cfg: TrainConfig, total_steps: int, device: torch.device) -> "Optim":
        optimizer = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr,
                                      betas=cfg.adam_betas, eps=cfg.adam_eps, foreach=True)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(cfg, total_steps))
        use_scaler = cfg.amp and device.type == "cuda" and cfg.amp_dtype == "float16"
        return cls(optimizer, scheduler, torch.amp.GradScaler("cuda", enabled=use_scaler), use_scaler)

    @property
    def lr(self) -> float:
        return self.scheduler.get_last_lr()[0]

    def step(self, max_grad_norm: float | None) -> None:
        """Clip (when configured), step the optimizer and the schedule, clear the gradients."""
        if max_grad_norm and max_grad_norm > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(
                [p for g in self.optimizer.param_groups for p in g["params"]], max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict() if self.use_scaler else None}

    def load_state_dict(self, ckpt: Mapping) -> None:
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler") and self.use_scaler:
            self.scaler.load_state_dict(ckpt["scaler"])


class _LossSum:
    """Sum and count of batch losses; :meth:`mean` over all ranks."""

    def __init__(self) -> None:
        self.total, self.count = 0.0, 0

    def add(self, value: float) -> None:
        self.total += value
        self.count += 1

    def mean(self, dist_: Dist) -> float:
        total, count = dist_.sum([self.total, self.count])
        return total / max(1, count)


class _Pace:
    """Wall time since the loop started here, and the ETA from the mean time per step so far."""

    def __init__(self, start_step: int, total_steps: int):
        self.t0 = time.time()
        self.start_step, self.total_steps = start_step, total_steps

    def seconds(self) -> float:
        return round(time.time() - self.t0, 3)

    def eta(self, step: int) -> float | None:
        done = step - self.start_step
        if done <= 0:
            return None
        return round((time.time() - self.t0) / done * max(0, self.total_steps - step), 1)


def _record(run: "_Run", plan: Plan, optim: Optim, progress: Progress, pace: _Pace, epoch: int,
            loss: float, val_loss: float | None) -> dict:
    """One train_log.jsonl record (the first six keys are the original format)."""
    return {"epoch": epoch, "step": progress.global_step, "loss": loss, "val_loss": val_loss,
            "lr": optim.lr, "seconds": pace.seconds(), "epochs": plan.epochs,
            "total_steps": plan.total_steps, "eta_seconds": pace.eta(progress.global_step)}


def _setup(cfg: TrainConfig, dist_: Dist, n_samples: int) -> dict:
    """What an epoch's time depends on, added to every epoch record of train_log.jsonl (the
    training-efficiency table reads it): data size, batch, devices, CPU threads."""
    device = dist_.device
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    return {"samples": n_samples, "batch_size": cfg.batch_size,
            "grad_accum_steps": cfg.grad_accum_steps, "world_size": dist_.world,
            "device": device.type, "device_name": name, "threads": torch.get_num_threads()}


def _log_step(run: "_Run", plan: Plan, optim: Optim, progress: Progress, pace: _Pace, epoch: int,
              loss: float) -> None:
    rec = _record(run, plan, optim, progress, pace, epoch, loss, None)
    if run.dist.is_main:
        log.info("epoch %d/%d, step %d/%d: loss %s, lr %.3g, ETA %s", epoch + 1, plan.epochs,
                 progress.global_step, plan.total_steps, _sig4(loss), rec["lr"],
                 format_duration(rec["eta_seconds"]))
        _append_log(run.log_path, rec)


def _sig4(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _check_loss(loss: torch.Tensor, epoch: int, batch: int) -> None:
    if loss.ndim:
        raise ValueError(f"model(batch) must return a scalar loss, got shape {tuple(loss.shape)}")
    if not torch.isfinite(loss):
        raise FloatingPointError(f"non-finite loss {loss.item()} at epoch {epoch} batch {batch}")


# --------------------------------------------------------------------------------------------
# helpers


def move_to_device(obj: Any, device: torch.device | str, non_blocking: bool = False) -> Any:
    """Recursively move tensors inside dicts/lists/tuples (and dataclass-free objects) to device."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=non_blocking)
    if isinstance(obj, dict):
        return {k: move_to_device(v, device, non_blocking) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # namedtuple
        return type(obj)(*(move_to_device(v, device, non_blocking) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(move_to_device(v, device, non_blocking) for v in obj)
    return obj


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or name.endswith(".bias") else decay).append(p)
    groups = []
    if decay:
        groups.append({"params": decay, "weight_decay": weight_decay})
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    if not groups:
        raise ValueError("the model has no trainable parameters")
    return groups


def _lr_lambda(cfg: TrainConfig, total_steps: int) -> Callable[[int], float]:
    warmup = int(cfg.warmup_ratio * total_steps)

    def f(step: int) -> float:
        if cfg.lr_schedule == "constant":
            return 1.0 if warmup == 0 or step >= warmup else (step + 1) / warmup
        if warmup and step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return f


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)


def _append_log(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


@torch.no_grad()
def evaluate_loss(model: nn.Module, dataset, collate_fn, cfg: TrainConfig,
                  device: torch.device, dist_: Dist | None = None) -> float:
    """Mean of ``model(batch)`` over ``dataset`` (batch-weighted by batch size), model in eval."""
    rank, world = (dist_.rank, dist_.world) if dist_ else (0, 1)
    sampler = EpochSampler(len(dataset), seed=0, epoch=0, shuffle=False, rank=rank, world_size=world)
    loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.batch_size, sampler=sampler,
                                         collate_fn=collate_fn, num_workers=cfg.num_workers,
                                         generator=loader_generator(cfg.seed, -1))
    was_training = model.training
    model.eval()
    total, count = 0.0, 0.0
    amp_ctx = _autocast(cfg, device)
    for batch in loader:
        batch = move_to_device(batch, device)
        with amp_ctx():
            loss = unwrap(model)(batch)
        n = _batch_len(batch)
        total += float(loss) * n
        count += n
    model.train(was_training)
    if dist_ is not None:
        total, count = dist_.sum([total, count])
    return total / count if count else float("nan")


def _batch_len(batch: Any) -> int:
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.ndim else 1
    if isinstance(batch, dict):
        for v in batch.values():
            n = _batch_len(v)
            if n:
                return n
    if isinstance(batch, (list, tuple)) and batch:
        return _batch_len(batch[0]) if isinstance(batch[0], (torch.Tensor, dict)) else len(batch)
    return 1


def _autocast(cfg: TrainConfig, device: torch.device) -> Callable[[], contextlib.AbstractContextManager]:
    """A factory of the forward pass's autocast context (a null context off CUDA / without amp)."""
    if cfg.amp and device.type == "cuda":
        dtype = torch.float16 if cfg.amp_dtype == "float16" else torch.bfloat16
        return lambda: torch.autocast(device_type="cuda", dtype=dtype)
    return contextlib.nullcontext
