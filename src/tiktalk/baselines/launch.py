"""Launch one baseline's training: in-process, or under torchrun for several GPUs.

A training job keeps its checkpoints in ``out_dir/checkpoints`` and resumes from them when
started again (a SLURM job killed at its time limit or pre-empted). Those checkpoints are only
valid for the same parameters and code: :func:`prepare_out_dir` compares a fingerprint of both
and discards stale checkpoints, so changing a hyper-parameter never resumes an old run.

Each torchrun worker runs ``python -m tiktalk.baselines.launch SPEC.json``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tiktalk.baselines.inputs import BaselineInputs
from tiktalk.families.registry import get_family
from tiktalk.io import write_json
from tiktalk.runtime import rank

log = logging.getLogger(__name__)


def fingerprint(params: dict, code_files: list[str | Path]) -> str:
    h = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode())
    for path in sorted(str(p) for p in code_files):
        h.update(path.encode())
        h.update(Path(path).read_bytes())
    return h.hexdigest()


def prepare_out_dir(out_dir: str | Path, fp: str) -> bool:
    """Create ``out_dir``; drop checkpoints made with other params/code. True if resumable."""
    out_dir = Path(out_dir)
    ckpt = out_dir / "checkpoints"
    stamp = ckpt / "fingerprint.txt"
    if ckpt.exists():
        old = stamp.read_text().strip() if stamp.exists() else None
        if old != fp:
            log.info("discarding checkpoints in %s: made with other parameters or code", ckpt)
            shutil.rmtree(ckpt)
    ckpt.mkdir(parents=True, exist_ok=True)
    resumable = any(p.name != "fingerprint.txt" for p in ckpt.iterdir())
    stamp.write_text(fp + "\n")
    return resumable


def run_training(family: str, params: dict, inputs: BaselineInputs, out_dir: str | Path,
                 gpus: int = 0) -> None:
    """Train in this process (0 or 1 GPU) or with ``torchrun --standalone`` (gpus > 1)."""
    out_dir = Path(out_dir)
    module = get_family(family)
    if gpus <= 1:
        module.train(params, inputs, out_dir)
        return
    spec = out_dir / "launch.json"
    write_json(spec, {"family": family, "params": params, "inputs": inputs.to_json(),
                      "out_dir": str(out_dir)})
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={gpus}", "-m", "tiktalk.baselines.launch", str(spec)]
    log.info("launching DDP: %s", " ".join(cmd))
    proc = subprocess.run(cmd, env=os.environ.copy())
    if proc.returncode != 0:
        raise RuntimeError(f"torchrun exited with {proc.returncode} (see the log above)")


def main(argv: list[str] | None = None) -> int:
    """Entry point of each torchrun worker: ``python -m tiktalk.baselines.launch spec.json``."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m tiktalk.baselines.launch SPEC.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s rank{rank()} "
                        "%(levelname)s %(name)s: %(message)s")
    get_family(spec["family"]).train(spec["params"], BaselineInputs.from_json(spec["inputs"]),
                                     Path(spec["out_dir"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
