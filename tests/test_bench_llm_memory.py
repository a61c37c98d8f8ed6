"""bench/bench_llm_memory.py: its parameter arithmetic against models built on the meta device,
and its measuring path on the CPU (the GPU figures are in the README)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bench_modules import load_bench

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    return load_bench("bench_llm_memory")


@pytest.mark.parametrize("hub_id, tolerance", [("Qwen/Qwen2-7B-Instruct", 1e-3), ("THUDM/chatglm-6b", 5e-3)])
def test_planned_llm_size_matches_the_stand_in_built_on_the_meta_device(bench, hub_id, tolerance):
    from transformers import AutoConfig, AutoModelForCausalLM

    arch = bench.Arch(**bench.KNOWN[hub_id])
    mc = bench.standin_config(arch)
    conf = AutoConfig.for_model(mc.pop("model_type"), **mc)
    with torch.device("meta"):
        built = sum(p.numel() for p in AutoModelForCausalLM.from_config(conf).parameters())
    assert abs(built - arch.lm_params()) / built < tolerance
    if hub_id == "THUDM/chatglm-6b":
        assert 6.6e9 < arch.lm_params() < 6.8e9            # 13.4 GB of fp16 weights


def test_plan_of_the_paper_rows_fits_a_v100_and_measuring_runs_on_the_cpu(bench):
    cfg = bench.merged([ROOT / "config" / "tiktalk.yaml", ROOT / "config" / "llm-qwen2.yaml"])
    plans = {n: bench.plan(n, cfg) for n in ("chatglm", "blip2_img", "qwen2", "blip2_img_qwen2")}
    assert all(p["total"] < 31 * bench.GB for p in plans.values())
    assert plans["blip2_img"]["seq"] == plans["chatglm"]["seq"] + 32
    assert plans["chatglm"]["trainable"] == 28 * 8 * (4096 + 3 * 4096)      # LoRA r=8 on query_key_value
    demo = bench.merged([ROOT / "config" / "config.yaml"])
    p = bench.plan("blip2_img", demo)
    m = bench.measure(dict(p, batch=2, accum=1), demo, steps=1, device="cpu")
    assert m["trainable"] == p["trainable"] and m["loss"] > 0
