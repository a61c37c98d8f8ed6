"""The training loop's processes and signals: DDP bookkeeping and the pre-emption stop.

* :class:`Dist`: under ``torchrun`` (``WORLD_SIZE > 1``) initialises the process group (nccl on
  CUDA, gloo on CPU) and offers the collectives the loop needs (barrier, any-rank flag, sums);
  a no-op shell in a single process. Only rank 0 (:attr:`Dist.is_main`) writes checkpoints and
  logs.
* :func:`wrap_ddp` / :func:`unwrap`: the model in and out of DistributedDataParallel.
* :class:`SignalFlag`: SIGTERM / SIGUSR1 (SLURM pre-emption, ``--signal``) set a flag that the
  loop reads after each optimizer step; all ranks agree on it (:meth:`Dist.any_flag`), save a
  mid-epoch checkpoint and raise :class:`TrainingInterrupted` (exit code 128+signum), so a
  requeued job resumes the same epoch in the same sample order.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from tiktalk.runtime import resolve_device

log = logging.getLogger("tiktalk.training")


class TrainingInterrupted(SystemExit):
    """Raised after a mid-epoch checkpoint was saved on SIGTERM/SIGUSR1; exit code 128+signum."""

    def __init__(self, signum: int, checkpoint: Path | None):
        super().__init__(128 + int(signum))
        self.signum = int(signum)
        self.checkpoint = checkpoint


class Dist:
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

    def gather(self, obj: Any) -> dict[int, Any]:
        """``{rank: obj of that rank}`` on every rank (a collective under DDP)."""
        if not self.enabled:
            return {self.rank: obj}
        gathered = [None] * self.world
        self.dist.all_gather_object(gathered, obj)
        return dict(enumerate(gathered))

    def close(self) -> None:
        if self.owned and self.dist.is_initialized():
            self.dist.destroy_process_group()


def wrap_ddp(model: nn.Module, dist_: Dist, find_unused_parameters: bool = False) -> nn.Module:
    if not dist_.enabled:
        return model
    device = dist_.device
    return torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=find_unused_parameters)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


class SignalFlag:
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
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._old[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)
        return False
