"""Where a training run is, saved and restored: the checkpoint and the sample order.

* A checkpoint (``last.pt``, written atomically by rank 0) holds the model, the optimizer,
  scheduler and grad scaler, the :class:`Progress` (epoch, position inside the epoch, global
  step, history), every rank's RNG states, the training config and the baseline's params.
  :func:`restore_checkpoint` gives the progress back, so finished epochs are skipped and a
  pre-empted epoch resumes at its next batch.
* The sample order (:class:`EpochSampler`): epoch ``e`` is a permutation drawn from a
  ``torch.Generator`` seeded with ``seed + e``; each rank reads its slice (the
  DistributedSampler scheme); resuming skips the batches already consumed. With the RNG states
  restored and :func:`loader_generator` fixing the DataLoader's own draws, a resumed run
  reproduces an uninterrupted one exactly (when ``collate_fn`` is deterministic and
  ``num_workers == 0``).
"""

from __future__ import annotations

import logging
import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Protocol

import numpy as np
import torch
from torch import nn

from tiktalk.io import atomic_path
from tiktalk.training.distributed import Dist, unwrap

log = logging.getLogger("tiktalk.training")

CHECKPOINT_NAME = "last.pt"


@dataclass
class Progress:
    """Where the run is: what a checkpoint stores and :func:`restore_checkpoint` gives back."""

    epoch: int = 0
    batches_done: int = 0          # batches of ``epoch`` already consumed (this rank)
    global_step: int = 0           # optimizer steps so far
    history: list[dict] = field(default_factory=list)


class Restorable(Protocol):
    """The optimizer side of a checkpoint (:class:`tiktalk.training.trainer.Optim`)."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, ckpt: Mapping) -> None: ...


def save_checkpoint(path: Path, dist_: Dist, model: nn.Module, optim: Restorable,
                    progress: Progress, meta: Mapping) -> None:
    """Write ``path`` atomically (rank 0) at the position ``progress`` points at; ``meta``
    (config, params, world size) is stored beside it. A collective under DDP: every rank
    contributes its RNG states, so each resumes its own dropout stream."""
    state = {
        "model": unwrap(model).state_dict(),
        **optim.state_dict(),
        "epoch": progress.epoch, "batches_done": progress.batches_done,
        "global_step": progress.global_step, "rng": dist_.gather(rng_state()),
        "history": progress.history, **meta,
    }
    if dist_.is_main:
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
    dist_.barrier()


def restore_checkpoint(path: Path, dist_: Dist, model: nn.Module, optim: Restorable) -> Progress:
    """Load ``path`` into the model and optimizer, and this rank's RNG states; where to
    continue from."""
    ckpt = load_checkpoint(path, map_location="cpu")
    model.load_state_dict(ckpt["model"])
    optim.load_state_dict(ckpt)
    progress = Progress(epoch=int(ckpt["epoch"]), batches_done=int(ckpt["batches_done"]),
                        global_step=int(ckpt["global_step"]), history=list(ckpt.get("history", [])))
    rng = ckpt.get("rng", {}).get(dist_.rank) or ckpt.get("rng", {}).get(0)
    if rng is not None:
        set_rng_state(rng)
    if dist_.is_main:
        log.info("resumed from %s: epoch %d, batch %d, step %d", path, progress.epoch,
                 progress.batches_done, progress.global_step)
    return progress


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    # Our own files: they hold RNG states (numpy arrays, tuples), so weights_only=False.
    return torch.load(path, map_location=map_location, weights_only=False)


def rng_state() -> dict:
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        try:
            torch.cuda.set_rng_state_all(state["cuda"])
        except (RuntimeError, IndexError):  # different GPU count after requeue
            log.warning("could not restore CUDA RNG states (GPU count changed)")


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


def loader_generator(seed: int, epoch: int) -> torch.Generator:
    # DataLoader draws its workers' base seed from this generator; without one it draws from
    # the global RNG at every iterator creation, which would shift the dropout/masking stream
    # of a resumed epoch (the resumed run creates one more iterator than the uninterrupted one).
    g = torch.Generator()
    g.manual_seed(1_000_003 * (int(seed) + 1) + int(epoch))
    return g
