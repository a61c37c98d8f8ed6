"""bench/gpu_check.sh, the one script for a GPU machine: without a GPU it says so in one line
and exits 2; its checks run on a CPU here (AMP off, DDP over gloo) and pass."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench_modules import load_bench

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: the script runs its checks")
def test_without_a_gpu_it_says_so_in_one_line_and_fails():
    env = dict(os.environ, PYTHON=sys.executable)
    res = subprocess.run(["bash", str(ROOT / "bench/gpu_check.sh")], capture_output=True, text=True,
                         env=env, timeout=120)
    assert res.returncode == 2
    assert res.stdout.strip().count("\n") == 0 and "no CUDA GPU visible" in res.stdout


def test_amp_and_ddp_checks_pass_on_a_cpu(tmp_path):
    gpu_check = load_bench("gpu_check")
    amp = gpu_check.check_amp("cpu", steps=4)
    assert amp["ok"] and set(amp["modes"]) == {"fp32", "amp-fp16"} and not amp["amp_active"]
    assert all(m["samples_per_s"] > 0 for m in amp["modes"].values())
    ddp = gpu_check.check_ddp("cpu", nproc=2, steps=3)
    assert ddp["ok"], ddp["error"]
    assert ddp["backend"] == "gloo" and ddp["samples_per_s"] > 0


def test_extract_check_passes_on_a_cpu():
    res = subprocess.run([sys.executable, str(ROOT / "bench/gpu_check.py"), "extract", "--device", "cpu"],
                         capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))
    line = res.stdout.strip().splitlines()[-1]
    assert res.returncode == 0 and line.startswith("PASS "), res.stderr[-2000:]
    assert json.loads(line[5:])["videos"] == 12
