"""Process-level choices every stage shares: which device a job computes on, and whether this
process is the one that writes files (rank 0 under ``torchrun``).

Layer 0: imports nothing from the package; torch is imported lazily, so the DAG-time code
(:mod:`tiktalk.workflow`) may import this module without paying for torch.
"""

from __future__ import annotations

import os


def rank() -> int:
    """This process's global rank under ``torchrun`` (``RANK``), 0 when not distributed."""
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    """This process's rank on its node (``LOCAL_RANK``), 0 when not distributed."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main_process() -> bool:
    """Rank 0 (or not distributed): the process that writes checkpoints, models and logs."""
    return rank() == 0


def resolve_device(spec: str | None = "auto"):
    """A ``torch.device`` for a config's ``device:`` value.

    ``"auto"`` (or empty/None): the GPU of this process's local rank when CUDA is available,
    else the CPU. Anything else (``"cpu"``, ``"cuda"``, ``"cuda:1"``) is taken as given; asking
    for CUDA on a machine without it is an error naming the setting.
    """
    import torch

    if spec in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank() % max(1, torch.cuda.device_count()))
        return torch.device("cpu")
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {spec!r} was asked for, but CUDA is not available here "
                           f"(set the config's `device:` to auto or cpu)")
    return device
