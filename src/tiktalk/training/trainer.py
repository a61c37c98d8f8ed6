"""The one training loop every baseline uses.

Contract with the model: ``loss = model(batch)`` returns a scalar tensor, where ``batch`` is
whatever ``collate_fn`` returns (dicts / lists / tuples of tensors are moved to the device by
:func:`move_to_device`). Only parameters with ``requires_grad=True`` are optimised (AdamW; no
weight decay on biases and LayerNorm/1-d weights), so frozen encoders stay frozen.

Robustness:

* a checkpoint is written atomically to ``out_dir/checkpoints/last.pt`` at the end of every
  epoch (model, optimizer, scheduler, grad scaler, epoch, position inside the epoch, global step,
  RNG states, history);
* on start, ``last.pt`` is loaded when present and finished epochs are skipped;
* SIGTERM / SIGUSR1 (SLURM pre-emption, ``--signal``) make the loop finish the current optimizer
  step, save a mid-epoch checkpoint (with the number of batches already consumed in the epoch)
  and raise :class:`TrainingInterrupted` (a ``SystemExit`` with code 128+signum), so the process
  exits non-zero and a requeued job resumes the same epoch in the same sample order.

Determinism: the sample order of epoch ``e`` is a permutation drawn from a
``torch.Generator`` seeded with ``seed + e``; resuming skips the batches already consumed.
Randomness inside ``model(batch)`` (dropout, token masking) uses torch's global RNG, whose
CPU/CUDA states are checkpointed, so a resumed run reproduces an uninterrupted one exactly when
``collate_fn`` itself is deterministic and ``num_workers == 0`` (with workers, order is still
exact but per-worker RNG in collate is not).

DDP: under ``torchrun`` (``WORLD_SIZE > 1``) the process group is initialised (nccl on CUDA,
gloo on CPU), the model is wrapped in DistributedDataParallel, each rank reads its own slice
of the epoch's permutation (the DistributedSampler scheme: pad to a multiple of the world size,
take ``rank::world``), and only rank 0 writes checkpoints and logs. The stop signal is agreed on
by all ranks (all-reduce) so every rank stops at the same step.

Public API::

    TrainConfig(...); TrainConfig.from_dict(d)
    train(model, train_set, collate_fn, cfg, out_dir, val_set=None, params=None) -> list[dict]
    move_to_device(obj, device)
    EpochSampler(n, seed, epoch, shuffle=True, rank=0, world_size=1, skip=0)  # for own loaders
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from tiktalk.io import atomic_path

log = logging.getLogger("tiktalk.training")

CHECKPOINT_NAME = "last.pt"
LOG_NAME = "train_log.jsonl"


@dataclass
class TrainConfig:
    epochs: int = 1
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

    @classmethod
    def from_dict(cls, d: dict | None) -> "TrainConfig":
        d = dict(d or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig keys {unknown}; known: {sorted(known)}")
        if "adam_betas" in d:
            d["adam_betas"] = tuple(d["adam_betas"])
        cfg = cls(**d)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.epochs < 0 or self.batch_size < 1 or self.grad_accum_steps < 1:
            raise ValueError(f"bad TrainConfig: {self}")
        if self.lr_schedule not in ("linear", "constant"):
            raise ValueError(f"lr_schedule must be 'linear' or 'constant', got {self.lr_schedule!r}")
        if self.amp_dtype not in ("float16", "bfloat16"):
            raise ValueError(f"amp_dtype must be 'float16' or 'bfloat16', got {self.amp_dtype!r}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")


class TrainingInterrupted(SystemExit):
    """Raised after a mid-epoch checkpoint was saved on SIGTERM/SIGUSR1; exit code 128+signum."""

    def __init__(self, signum: int, checkpoint: Path | None):
        super().__init__(128 + int(signum))
        self.signum = int(signum)
        self.checkpoint = checkpoint


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


def resolve_device(spec: str = "auto") -> torch.device:
    if spec == "auto":
        if torch.cuda.is_available():
            local = int(os.environ.get("LOCAL_RANK", "0"))
            return torch.device("cuda", local % max(1, torch.cuda.device_count()))
        return torch.device("cpu")
    return torch.device(spec)


class EpochSampler(torch.utils.data.Sampler):
    """Deterministic per-epoch order, rank slicing (DistributedSampler scheme) and skipping.

    Order of epoch ``e``: ``randperm(n)`` from a Generator seeded ``seed + e`` (or ``range(n)``
    when not shuffling); padded by wrapping to a multiple of ``world_size``; rank ``r`` takes
    ``r::world_size``; the first ``skip`` samples of this rank's slice are dropped (resume).
    """

    def __init__(self, n: int, seed: int, epoch: int, shuffle: bool = True,
                 rank: int = 0, world_size: int = 1, skip: int = 0):
        self.n, self.seed, self.epoch, self.shuffle = n, seed, epoch, shuffle
        self.rank, self.world_size, self.skip = rank, world_size, skip

    def indices(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(int(self.seed) + int(self.epoch))
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        total = int(math.ceil(self.n / self.world_size)) * self.world_size if self.n else 0
        if total > len(order) and order:
            order = order + order[: total - len(order)]
        return order[self.rank:total:self.world_size][self.skip:]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices())

    def __len__(self) -> int:
        per_rank = int(math.ceil(self.n / self.world_size)) if self.n else 0
        return max(0, per_rank - self.skip)


def _per_rank_batches(n: int, world: int, batch_size: int) -> int:
    per_rank = int(math.ceil(n / world)) if n else 0
    return int(math.ceil(per_rank / batch_size))


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


def _rng_state() -> dict:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        try:
            torch.cuda.set_rng_state_all(state["cuda"])
        except (RuntimeError, IndexError):  # different GPU count after requeue
            log.warning("could not restore CUDA RNG states (GPU count changed)")


class _Dist:
    """Process-group bookkeeping; a no-op shell when not distributed."""

    def __init__(self, device_spec: str):
        import torch.distributed as dist

        self.dist = dist
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.owned = False
        self.device = resolve_device(device_spec)
        if self.world > 1:
            if not dist.is_initialized():
                backend = "nccl" if self.device.type == "cuda" else "gloo"
                if self.device.type == "cuda":
                    torch.cuda.set_device(self.device)
                dist.init_process_group(backend=backend)
                self.owned = True
            self.rank = dist.get_rank()
            self.world = dist.get_world_size()

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            if self.device.type == "cuda":
                self.dist.barrier(device_ids=[self.device.index or 0])
            else:
                self.dist.barrier()

    def any_flag(self, flag: bool) -> bool:
        if not self.enabled:
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        self.dist.all_reduce(t, op=self.dist.ReduceOp.MAX)
        return bool(t.item() > 0)

    def sum(self, values: Sequence[float]) -> list[float]:
        if not self.enabled:
            return list(values)
        t = torch.tensor(list(values), dtype=torch.float64, device=self.device)
        self.dist.all_reduce(t)
        return t.tolist()

    def close(self) -> None:
        if self.owned and self.dist.is_initialized():
            self.dist.destroy_process_group()


class _SignalFlag:
    """Installs SIGTERM/SIGUSR1 handlers that set a flag; restores the old ones on exit."""

    SIGNALS = tuple(s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGUSR1", None)) if s)

    def __init__(self):
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def _handler(self, signum, frame):  # noqa: ARG002
        if self.signum is None:
            self.signum = signum
            log.warning("received signal %d: will checkpoint and stop after this step", signum)

    def __enter__(self):
        import threading

        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._old[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)
        return False


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") and isinstance(
        model, torch.nn.parallel.DistributedDataParallel) else model


def _append_log(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def _save_checkpoint(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    # Our own files: they hold RNG states (numpy arrays, tuples), so weights_only=False.
    return torch.load(path, map_location=map_location, weights_only=False)


@torch.no_grad()
def evaluate_loss(model: nn.Module, dataset, collate_fn, cfg: TrainConfig,
                  device: torch.device, dist_: _Dist | None = None) -> float:
    """Mean of ``model(batch)`` over ``dataset`` (batch-weighted by batch size), model in eval."""
    rank, world = (dist_.rank, dist_.world) if dist_ else (0, 1)
    sampler = EpochSampler(len(dataset), seed=0, epoch=0, shuffle=False, rank=rank, world_size=world)
    loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.batch_size, sampler=sampler,
                                         collate_fn=collate_fn, num_workers=cfg.num_workers,
                                         generator=_loader_generator(cfg.seed, -1))
    was_training = model.training
    model.eval()
    total, count = 0.0, 0.0
    amp_ctx = _autocast(cfg, device)
    for batch in loader:
        batch = move_to_device(batch, device)
        with amp_ctx():
            loss = _unwrap(model)(batch)
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


def _autocast(cfg: TrainConfig, device: torch.device):
    import contextlib

    if cfg.amp and device.type == "cuda":
        dtype = torch.float16 if cfg.amp_dtype == "float16" else torch.bfloat16
        return lambda: torch.autocast(device_type="cuda", dtype=dtype)
    return contextlib.nullcontext


# --------------------------------------------------------------------------------------------
# the loop


def train(model: nn.Module, train_set, collate_fn: Callable | None, cfg: TrainConfig | dict,
          out_dir: str | os.PathLike, val_set=None, params: dict | None = None) -> list[dict]:
    """Train ``model`` on ``train_set``; return the per-epoch history.

    History records: ``{"epoch", "global_step", "train_loss", "val_loss", "lr", "seconds"}``
    (``val_loss`` None without ``val_set``). ``params`` (e.g. the baseline's config block) is
    stored in the checkpoint for provenance. Writes ``out_dir/train_log.jsonl`` and
    ``out_dir/checkpoints/last.pt``; the model is left on the training device with the final
    weights, in eval mode.
    """
    if isinstance(cfg, dict):
        cfg = TrainConfig.from_dict(cfg)
    cfg.validate()
    out_dir = Path(out_dir)
    ckpt_path = out_dir / "checkpoints" / CHECKPOINT_NAME
    log_path = out_dir / LOG_NAME
    dist_ = _Dist(cfg.device)
    device = dist_.device
    try:
        if dist_.is_main:
            ckpt_path.parent.mkdir(parents=True, exist_ok=True)
        dist_.barrier()
        return _train(model, train_set, collate_fn, cfg, ckpt_path, log_path, val_set,
                      params, dist_, device)
    finally:
        dist_.close()


def _train(model, train_set, collate_fn, cfg, ckpt_path, log_path, val_set, params, dist_, device):
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    model.to(device)
    model.train()
    optimizer = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.lr,
                                  betas=cfg.adam_betas, eps=cfg.adam_eps, foreach=True)
    n_batches = _per_rank_batches(len(train_set), dist_.world, cfg.batch_size)
    steps_per_epoch = int(math.ceil(n_batches / cfg.grad_accum_steps)) if n_batches else 0
    total_steps = max(1, steps_per_epoch * cfg.epochs)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(cfg, total_steps))
    use_scaler = cfg.amp and device.type == "cuda" and cfg.amp_dtype == "float16"
    scaler = torch.amp.GradScaler("cuda", enabled=use_scaler)
    amp_ctx = _autocast(cfg, device)

    start_epoch, batches_done, global_step, history = 0, 0, 0, []
    if ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path, map_location="cpu")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler") and use_scaler:
            scaler.load_state_dict(ckpt["scaler"])
        start_epoch, batches_done = int(ckpt["epoch"]), int(ckpt["batches_done"])
        global_step = int(ckpt["global_step"])
        history = list(ckpt.get("history", []))
        rng = ckpt.get("rng", {}).get(dist_.rank) or ckpt.get("rng", {}).get(0)
        if rng is not None:
            _set_rng_state(rng)
        if dist_.is_main:
            log.info("resumed from %s: epoch %d, batch %d, step %d", ckpt_path, start_epoch,
                     batches_done, global_step)
        del ckpt

    train_model = model
    if dist_.enabled:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=cfg.find_unused_parameters)

    def make_state(epoch: int, done: int) -> dict:
        # RNG states of every rank so each resumes its own dropout/masking stream.
        rng_all = {dist_.rank: _rng_state()}
        if dist_.enabled:
            gathered = [None] * dist_.world
            dist_.dist.all_gather_object(gathered, rng_all[dist_.rank])
            rng_all = dict(enumerate(gathered))
        return {
            "model": _unwrap(train_model).state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict() if use_scaler else None,
            "epoch": epoch, "batches_done": done, "global_step": global_step,
            "rng": rng_all, "history": history, "train_config": dataclasses.asdict(cfg),
            "params": params, "world_size": dist_.world,
        }

    def save(epoch: int, done: int) -> None:
        state = make_state(epoch, done)  # collective under DDP: every rank takes part
        if dist_.is_main:
            _save_checkpoint(ckpt_path, state)
        dist_.barrier()

    t0 = time.time()
    with _SignalFlag() as stop:
        for epoch in range(start_epoch, cfg.epochs):
            skip = batches_done * cfg.batch_size
            sampler = EpochSampler(len(train_set), cfg.seed, epoch, cfg.shuffle, dist_.rank,
                                   dist_.world, skip=skip)
            loader = torch.utils.data.DataLoader(
                train_set, batch_size=cfg.batch_size, sampler=sampler, collate_fn=collate_fn,
                num_workers=cfg.num_workers, pin_memory=device.type == "cuda",
                persistent_workers=False, generator=_loader_generator(cfg.seed, epoch))
            run_loss, run_n, epoch_loss, epoch_n = 0.0, 0, 0.0, 0
            done = batches_done
            optimizer.zero_grad(set_to_none=True)
            for batch in loader:
                batch = move_to_device(batch, device, non_blocking=True)
                done += 1
                is_step = (done % cfg.grad_accum_steps == 0) or done == n_batches
                sync_ctx = _no_sync(train_model) if (dist_.enabled and not is_step) else None
                with (sync_ctx or _null()):
                    with amp_ctx():
                        loss = train_model(batch)
                    if loss.ndim:
                        raise ValueError(f"model(batch) must return a scalar loss, got shape {tuple(loss.shape)}")
                    if not torch.isfinite(loss):
                        raise FloatingPointError(f"non-finite loss {loss.item()} at epoch {epoch} batch {done}")
                    scaler.scale(loss / cfg.grad_accum_steps).backward()
                lv = float(loss.detach())
                run_loss += lv
                run_n += 1
                epoch_loss += lv
                epoch_n += 1
                if not is_step:
                    continue
                if cfg.max_grad_norm and cfg.max_grad_norm > 0:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(
                        [p for g in optimizer.param_groups for p in g["params"]], cfg.max_grad_norm)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                global_step += 1
                if cfg.log_every and global_step % cfg.log_every == 0:
                    avg = dist_.sum([run_loss, run_n])
                    rec = {"epoch": epoch, "step": global_step, "loss": avg[0] / max(1, avg[1]),
                           "val_loss": None, "lr": scheduler.get_last_lr()[0],
                           "seconds": round(time.time() - t0, 3)}
                    if dist_.is_main:
                        log.info("epoch %d step %d loss %.4f lr %.3g", epoch, global_step,
                                 rec["loss"], rec["lr"])
                        _append_log(log_path, rec)
                    run_loss, run_n = 0.0, 0
                if dist_.any_flag(stop.signum is not None) and done < n_batches:
                    signum = stop.signum or signal.SIGTERM
                    save(epoch, done)
                    if dist_.is_main:
                        log.warning("checkpointed epoch %d at batch %d/%d; exiting", epoch, done,
                                    n_batches)
                    raise TrainingInterrupted(signum, ckpt_path)
            batches_done = 0
            val_loss = None
            if val_set is not None and len(val_set):
                val_loss = evaluate_loss(train_model, val_set, collate_fn, cfg, device, dist_)
            tot = dist_.sum([epoch_loss, epoch_n])
            rec = {"epoch": epoch, "step": global_step, "loss": tot[0] / max(1, tot[1]),
                   "val_loss": val_loss, "lr": scheduler.get_last_lr()[0],
                   "seconds": round(time.time() - t0, 3)}
            history.append({"epoch": epoch, "global_step": global_step, "train_loss": rec["loss"],
                            "val_loss": val_loss, "lr": rec["lr"], "seconds": rec["seconds"]})
            if dist_.is_main:
                log.info("epoch %d done: train loss %.4f val loss %s", epoch, rec["loss"], val_loss)
                _append_log(log_path, rec)
            last = epoch == cfg.epochs - 1
            if cfg.checkpoint_every_epoch or last or stop.signum is not None:
                save(epoch + 1, 0)
            if dist_.any_flag(stop.signum is not None) and not last:
                raise TrainingInterrupted(stop.signum or signal.SIGTERM, ckpt_path)
    model.eval()
    return history


def _loader_generator(seed: int, epoch: int) -> torch.Generator:
    # DataLoader draws its workers' base seed from this generator; without one it draws from
    # the global RNG at every iterator creation, which would shift the dropout/masking stream
    # of a resumed epoch (the resumed run creates one more iterator than the uninterrupted one).
    g = torch.Generator()
    g.manual_seed(1_000_003 * (int(seed) + 1) + int(epoch))
    return g


def _no_sync(ddp_model):
    return ddp_model.no_sync()


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
