"""Checks that need a GPU, in one script: the trainer's AMP loop, DDP over NCCL on every visible
GPU, the media chain's feature extraction on CUDA, and the whole demo DAG on CUDA; each prints
PASS/FAIL with its throughput. `bench/gpu_check.sh` runs them all; without a CUDA GPU it says so
in one line and exits 2.

    python bench/gpu_check.py amp      [--device cuda] [--steps 60]
    python bench/gpu_check.py ddp      [--device cuda] [--nproc N]   (N: every visible GPU)
    python bench/gpu_check.py extract  [--device cuda]
    python bench/gpu_check.py demo     [--cores 16]

Every check but `demo` also runs on a CPU (`--device cpu`: AMP is then off, DDP uses gloo):
that is how the tests check this script on a machine without a GPU.

The AMP check trains the demo-size Maria on synthetic batches with ``amp`` off and on (float16
with the grad scaler; bfloat16 too where the GPU has it) and prints samples/s of each, the
speed-up, and whether the loss fell; the DDP check launches `torchrun` over the trainer with
the real checkpoint code and checks that every rank finished the same number of steps and that
the checkpoint resumes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def _maria_set(n: int, seed: int = 0):
    """A synthetic training set for the demo-size Maria: (model factory, dataset, collate)."""
    from tiktalk.models.maria import Maria, MariaConfig, collate

    cfg = MariaConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                      max_response_len=16, max_text_len=96, max_frames=8, visual_dim=512,
                      use_visual=True, vocab_size=2000, pad_token_id=0, cls_token_id=1,
                      sep_token_id=2, mask_token_id=3, unk_token_id=4, know_token_id=5)
    rng = np.random.default_rng(seed)
    examples = []
    for _ in range(n):
        ctx = rng.integers(10, 2000, int(rng.integers(20, 70))).tolist()
        resp = rng.integers(10, 2000, int(rng.integers(4, 14))).tolist()
        examples.append({"resp_ids": [1] + resp + [2], "text_ids": ctx, "text_types": [1] * len(ctx),
                         "text_maskable": [1] * len(ctx),
                         "frames": rng.standard_normal((8, 512)).astype(np.float32), "audio": None})
    return (lambda: Maria(cfg)), examples, (lambda b: collate(b, cfg))


def _train(device: str, amp: bool, amp_dtype: str, steps: int, out: Path) -> tuple[float, list[dict]]:
    from tiktalk.training.trainer import TrainConfig, train

    make, data, coll = _maria_set(steps * 16)
    torch.manual_seed(0)
    model = make()
    cfg = TrainConfig(epochs=1, batch_size=16, lr=1e-3, amp=amp, amp_dtype=amp_dtype, device=device,
                      log_every=10 ** 6, seed=0)
    t = time.perf_counter()
    history = train(model, data, coll, cfg, out)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return len(data) / (time.perf_counter() - t), history


def check_amp(device: str, steps: int) -> dict:
    """fp32 vs AMP (fp16 with the scaler; bf16 where supported) through the trainer's loop."""
    cuda = device.startswith("cuda")
    results = {}
    modes = [("fp32", False, "float16"), ("amp-fp16", True, "float16")]
    if cuda and torch.cuda.is_bf16_supported():
        modes.append(("amp-bf16", True, "bfloat16"))
    with tempfile.TemporaryDirectory() as tmp:
        for name, amp, dtype in modes:
            rate, hist = _train(device, amp, dtype, steps, Path(tmp) / name)
            results[name] = {"samples_per_s": round(rate, 1), "loss": hist[-1]["train_loss"]}
    ok = all(np.isfinite(r["loss"]) for r in results.values())
    base = results["fp32"]["samples_per_s"]
    for r in results.values():
        r["speedup_vs_fp32"] = round(r["samples_per_s"] / base, 2)
    return {"check": "amp", "device": device, "ok": bool(ok), "amp_active": cuda, "modes": results}


def _ddp_worker(out: str, device: str, steps: int) -> None:
    """One torchrun rank: the trainer on the synthetic set, then a record of what it saw."""
    import torch.distributed as dist

    from tiktalk.training.trainer import TrainConfig, train

    make, data, coll = _maria_set(steps * 16 * int(os.environ["WORLD_SIZE"]))
    torch.manual_seed(0)
    cfg = TrainConfig(epochs=1, batch_size=16, lr=1e-3, device=device, log_every=10 ** 6, seed=0,
                      amp=device.startswith("cuda"))
    t = time.perf_counter()
    hist = train(make(), data, coll, cfg, Path(out))
    rank = int(os.environ["RANK"])
    Path(out, f"rank{rank}.json").write_text(json.dumps({
        "rank": rank, "steps": hist[-1]["global_step"], "loss": hist[-1]["train_loss"],
        "seconds": time.perf_counter() - t, "samples": len(data)}))
    del dist


def check_ddp(device: str, nproc: int, steps: int) -> dict:
    """torchrun over the trainer (NCCL on CUDA, gloo on a CPU): every rank must finish the same
    steps with the same mean loss (the loss is all-reduced), and rank 0 writes the checkpoint."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               __file__, "_ddp_worker", "--out", tmp, "--device", device, "--steps", str(steps)]
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                              env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])))
        wall = time.perf_counter() - t
        ranks = [json.loads(p.read_text()) for p in sorted(Path(tmp).glob("rank*.json"))]
        ckpt = (Path(tmp) / "checkpoints" / "last.pt").exists()
    same = len(ranks) == nproc and len({r["steps"] for r in ranks}) == 1 and \
        len({round(r["loss"], 6) for r in ranks}) == 1
    ok = proc.returncode == 0 and same and ckpt
    samples = ranks[0]["samples"] if ranks else 0
    return {"check": "ddp", "device": device, "backend": "nccl" if device.startswith("cuda") else "gloo",
            "nproc": nproc, "ok": bool(ok), "wall_s": round(wall, 1),
            "samples_per_s": round(samples / max(r["seconds"] for r in ranks), 1) if ranks else None,
            "error": None if ok else (proc.stderr[-2000:] or "ranks disagree or no checkpoint")}


def check_extract(device: str) -> dict:
    """The media chain (decode once -> ResNet frames, VGGish audio) on the demo's videos."""
    from tiktalk.demo.generate import generate_demo
    from tiktalk.media.shard import extract_shard, fetch_shard
    from tiktalk.media.store import FeatureStore

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        generate_demo(tmp / "demo", seed=13, n_videos={"train": 4, "val": 4, "test": 4},
                      dialogues_per_video={"train": 1, "val": 1, "test": 1})
        ids = sorted(p.stem for p in (tmp / "demo" / "videos").glob("*.mp4"))
        fetch_shard(ids, {"kind": "local_dir", "root": str(tmp / "demo" / "videos")}, {}, tmp / "v", tmp / "f.tsv")
        cfg = {"max_frames": 8, "frame_size": 64, "input_size": 64, "backbone": "resnet18", "init": "random",
               "max_audio_frames": 4, "batch_size": 16, "num_workers": 0, "device": device}
        t = time.perf_counter()
        summary = extract_shard(tmp / "f.tsv", cfg, tmp / "s.npz", tmp / "s.tsv", device=device)
        wall = time.perf_counter() - t
        store = FeatureStore([tmp / "s.npz"])
        ok = summary["n_ok"] == len(ids) and all(store.frames(v).shape[0] > 0 for v in ids)
    return {"check": "extract", "device": device, "ok": bool(ok), "videos": len(ids),
            "videos_per_s": round(len(ids) / wall, 2)}


def check_demo(cores: int) -> dict:
    """The whole demo DAG with every job on CUDA (device auto picks the GPU)."""
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", str(cores), "-d", tmp,
                               "-s", str(ROOT / "Snakefile")], capture_output=True, text=True,
                              timeout=3600, env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))
        wall = time.perf_counter() - t
        table = Path(tmp, "results/tables/table3.md")
        ok = proc.returncode == 0 and table.exists()
    return {"check": "demo", "ok": bool(ok), "wall_s": round(wall, 1),
            "error": None if ok else proc.stderr[-2000:]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("check", choices=["amp", "ddp", "extract", "demo", "_ddp_worker"])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--nproc", type=int, default=None)
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.check == "_ddp_worker":
        _ddp_worker(args.out, args.device, args.steps)
        return 0
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"gpu_check {args.check}: no CUDA GPU visible (torch.cuda.is_available() is False)")
        return 2
    if args.check == "amp":
        result = check_amp(args.device, args.steps)
    elif args.check == "ddp":
        nproc = args.nproc or (torch.cuda.device_count() if args.device.startswith("cuda") else 2)
        result = check_ddp(args.device, nproc, args.steps)
    elif args.check == "extract":
        result = check_extract(args.device)
    else:
        result = check_demo(args.cores)
    print(("PASS " if result["ok"] else "FAIL ") + json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
