"""GPU memory of the LLM rows (ChatGLM-6B, BLIP-2_Img, BLIP-2_Video; the Qwen2 overlay's too):
the plan, and on a GPU the measured peak.

Plan (always; no GPU, no weights needed), per LLM row of the config, for one training step at
the config's micro-batch (``train.batch_size``) and longest sequence:

* weights: the frozen LLM in ``torch_dtype`` (LoRA merged for BLIP-2; the vision encoder runs in
  the media stage, not here);
* trainable: LoRA adapters (ChatGLM row) or queries + Q-Former + projection (BLIP-2), float32,
  with their gradients and AdamW's two moments (4 + 4 + 8 bytes a parameter);
* activations (estimate, fp16 autocast, activation checkpointing): the checkpointed layer inputs
  (layers x batch x seq x hidden x 2 bytes), one layer recomputed in backward (Korthikanti et al.
  2022: seq x batch x hidden x (34 + 5 heads seq / hidden) bytes; less with fused attention), and
  the logits (batch x seq x vocab x ~14 bytes: fp16 logits, their fp32 copy for the loss, its
  log-softmax and gradient). The CUDA context (~0.5-1 GB) is not counted.

Architectures: the ``base_model`` directory's config.json when it is there (``weights/<name>``
after a fetch), the demo's ``model_config``, or else the table below for the artifact's hub id
(values of the hub models' config.json).

``--gpu-measure``: builds, on the GPU, each row's LLM with RANDOM weights of the same size --
Qwen2 natively; ChatGLM-6B (remote code, not loadable here) as a Llama of its width, depth, heads
and vocabulary whose 3-matrix MLP has ChatGLM's 2-matrix MLP parameter count -- wraps it the way
the family does (LoRA + checkpointing, or frozen + Q-Former), and runs ``--steps`` optimizer steps
(fp16 autocast + GradScaler, AdamW) on random batches of the plan's shape, reporting
``torch.cuda.max_memory_allocated`` (and reserved) and the step time.

Usage: PYTHONPATH=src python bench/bench_llm_memory.py [--config config/tiktalk.yaml
       [config/llm-qwen2.yaml]] [--gpu-measure] [--steps 2]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

GB = 1024 ** 3
# hub id -> architecture (from each model's config.json)
KNOWN = {
    "THUDM/chatglm-6b": dict(kind="chatglm", hidden=4096, layers=28, heads=32, kv_heads=32, ffn=16384,
                             mlp_mats=2, vocab=130528, tied=False),
    "Qwen/Qwen2-7B-Instruct": dict(kind="qwen2", hidden=3584, layers=28, heads=28, kv_heads=4, ffn=18944,
                                   mlp_mats=3, vocab=152064, tied=False),
}
# what ChatGLM's LoRA target is called in the Llama stand-in
STANDIN_TARGETS = {"query_key_value": ["q_proj", "k_proj", "v_proj"], "dense": ["o_proj"]}
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}
IMAGE_TOKENS, IMAGE_DIM = 257, 1408          # EVA ViT-g/14 at 224 px: tokens a frame, width


@dataclass
class Arch:
    kind: str
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    ffn: int
    mlp_mats: int
    vocab: int
    tied: bool

    def lm_params(self) -> int:
        head_dim = self.hidden // self.heads
        attn = 2 * self.hidden * self.hidden + 2 * self.hidden * self.kv_heads * head_dim
        per_layer = attn + self.mlp_mats * self.hidden * self.ffn
        return self.layers * per_layer + self.vocab * self.hidden * (1 if self.tied else 2)

    def lora_params(self, targets, r: int) -> int:
        head_dim = self.hidden // self.heads
        kv = self.kv_heads * head_dim
        shapes = {"query_key_value": (self.hidden, 3 * self.hidden), "dense": (self.hidden, self.hidden),
                  "q_proj": (self.hidden, self.hidden), "o_proj": (self.hidden, self.hidden),
                  "k_proj": (self.hidden, kv), "v_proj": (self.hidden, kv),
                  "gate_proj": (self.hidden, self.ffn), "up_proj": (self.hidden, self.ffn),
                  "down_proj": (self.ffn, self.hidden)}
        return self.layers * sum(r * sum(shapes[t]) for t in targets if t in shapes)


def hub_id(base: str, cfg: dict) -> str:
    """The hub id behind a ``weights/<name>`` directory (the config's ``weights:`` block)."""
    weights = cfg.get("weights") or {}
    root = weights.get("dir", "weights").rstrip("/") + "/"
    if base.startswith(root):
        artifact = (weights.get("artifacts") or {}).get(base[len(root):].split("/")[0]) or {}
        return artifact.get("hub") or base
    return base


def arch_of(model: dict, cfg: dict) -> Arch:
    if model.get("model_config"):
        mc = model["model_config"]
        heads = mc.get("num_attention_heads", 1)
        return Arch(mc.get("model_type", "llama"), mc["hidden_size"], mc["num_hidden_layers"], heads,
                    mc.get("num_key_value_heads", heads), mc["intermediate_size"], 3, mc.get("vocab_size", 2000),
                    mc.get("tie_word_embeddings", False))
    base = model["base_model"]
    local = Path(base) / "config.json"
    if local.exists():
        c = json.loads(local.read_text())
        heads = c.get("num_attention_heads", 1)
        return Arch(c.get("model_type", "?"), c["hidden_size"], c.get("num_hidden_layers", c.get("num_layers")),
                    heads, c.get("num_key_value_heads", heads), c.get("intermediate_size", c.get("inner_hidden_size")),
                    2 if c.get("model_type") == "chatglm" else 3, c["vocab_size"], c.get("tie_word_embeddings", False))
    hub = hub_id(base, cfg)
    if hub not in KNOWN:
        raise SystemExit(f"unknown LLM {base!r} ({hub}): fetch it (its config.json is read) or add it to KNOWN")
    return Arch(**KNOWN[hub])


def qformer_params(model: dict) -> tuple[int, int, dict]:
    """(Q-Former + queries parameters, num_queries, Blip2QFormerConfig kwargs) of a BLIP-2 row;
    a pretrained one is BLIP-2's (32 queries, 12 layers of 768, cross-attention every 2nd)."""
    import torch
    from transformers import Blip2QFormerConfig, Blip2QFormerModel

    q = model.get("qformer") or {}
    kw = dict(hidden_size=q.get("hidden_size", 768), num_hidden_layers=q.get("num_layers", 12),
              num_attention_heads=q.get("num_heads", 12), intermediate_size=q.get("intermediate_size", 3072),
              cross_attention_frequency=q.get("cross_attention_freq", 2), encoder_hidden_size=IMAGE_DIM)
    nq = q.get("num_queries", 32)
    with torch.device("meta"):
        n = sum(p.numel() for p in Blip2QFormerModel(Blip2QFormerConfig(**kw)).parameters())
    return n + nq * kw["hidden_size"], nq, kw


def merged(files) -> dict:
    def merge(a, b):
        for k, v in b.items():
            a[k] = merge(a.get(k, {}), v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
        return a
    out: dict = {}
    for f in files:
        merge(out, yaml.safe_load(Path(f).read_text()))
    return out


def plan(name: str, cfg: dict) -> dict:
    """The memory plan of one LLM row (bytes)."""
    rows = cfg["baselines"]
    row = rows[name]
    llm_row = row if row["family"] == "causal_lm" else rows[row["llm_from"]]
    llm_model = llm_row["params"]["model"]
    arch = arch_of(llm_model, cfg)
    train = row["params"]["train"]
    batch = int(train.get("batch_size", 8))
    seq = int(llm_model.get("max_source_len", 128)) + int(llm_model.get("max_target_len", 64)) + 3
    p = {"row": name, "label": row.get("label", name), "family": row["family"], "arch": arch,
         "batch": batch, "accum": int(train.get("grad_accum_steps", 1)), "llm_params": arch.lm_params(),
         "dtype": llm_model.get("torch_dtype", "float32"), "checkpointing": bool(llm_model.get("gradient_checkpointing"))}
    lora = llm_model.get("lora") or {}
    if row["family"] == "causal_lm":
        p["trainable"] = arch.lora_params(lora.get("target_modules", ["query_key_value"]), int(lora.get("r", 8)))
        p["image_bytes"] = 0
    else:
        qf, nq, kw = qformer_params(row["params"]["model"])
        p["trainable"] = qf + kw["hidden_size"] * arch.hidden + arch.hidden
        p["qformer_kwargs"], p["num_queries"] = kw, nq
        seq += nq
        p["image_bytes"] = batch * IMAGE_TOKENS * IMAGE_DIM * 4
    p["seq"] = seq
    h, s, b, a, layers = arch.hidden, seq, batch, arch.heads, arch.layers
    p["weights"] = p["llm_params"] * DTYPE_BYTES[p["dtype"]]
    p["train_state"] = p["trainable"] * 16
    one_layer = s * b * h * (34 + 5 * a * s / h)
    kept = layers * b * s * h * 2 if p["checkpointing"] else (layers - 1) * one_layer
    p["activations"] = kept + one_layer + b * s * arch.vocab * 14 + p["image_bytes"]
    p["total"] = p["weights"] + p["train_state"] + p["activations"]
    return p


# -- measuring ------------------------------------------------------------------------------
def standin_config(arch: Arch) -> dict:
    """A natively loadable model config of the row's size (ChatGLM -> Llama, see module doc)."""
    ffn = arch.ffn if arch.mlp_mats == 3 else int(round(arch.ffn * arch.mlp_mats / 3 / 64) * 64)
    return {"model_type": "qwen2" if arch.kind == "qwen2" else "llama", "hidden_size": arch.hidden,
            "intermediate_size": ffn, "num_hidden_layers": arch.layers, "num_attention_heads": arch.heads,
            "num_key_value_heads": arch.kv_heads, "vocab_size": arch.vocab, "tie_word_embeddings": arch.tied,
            "max_position_embeddings": 2048}


def measure(p: dict, cfg: dict, steps: int, device: str = "cuda") -> dict:
    import contextlib

    import torch

    from tiktalk.models import llm_loading
    from tiktalk.models.blip2 import Blip2Config, Blip2Dialogue
    from tiktalk.models.causal_lm import CausalLMConfig, CausalLMModel, LoraSettings, apply_lora
    from tiktalk.settings import from_mapping

    dev = torch.device(device)
    cuda = dev.type == "cuda"
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(0)
    dtype = llm_loading.torch_dtype(p["dtype"])
    llm = llm_loading.build_lm_from_config(standin_config(p["arch"]), dtype, dev)
    weights = torch.cuda.memory_allocated() if cuda else 0
    rows = cfg["baselines"]
    llm_model = (rows[p["row"]] if p["family"] == "causal_lm" else rows[rows[p["row"]]["llm_from"]])["params"]["model"]
    b, s, vocab = p["batch"], p["seq"], p["arch"].vocab
    if p["family"] == "causal_lm":
        if p["checkpointing"]:
            llm_loading.enable_activation_checkpointing(llm)
        lora = dict(llm_model.get("lora") or {})
        targets = [t2 for t in lora.get("target_modules", ["query_key_value"]) for t2 in STANDIN_TARGETS.get(t, [t])]
        lm = apply_lora(llm, LoraSettings(r=int(lora.get("r", 8)), alpha=int(lora.get("alpha", 32)),
                                          dropout=float(lora.get("dropout", 0.1)), target_modules=tuple(targets)))
        model = CausalLMModel(lm, from_mapping(CausalLMConfig, {"model_config": {"model_type": "llama"}}), 0, 1)

        def batch():
            ids = torch.randint(10, vocab, (b, s), device=dev)
            labels = ids.clone()
            labels[:, : s // 2] = -100
            return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    else:
        qf = p["qformer_kwargs"]
        bcfg = from_mapping(Blip2Config, {"qformer": {
            "num_queries": p["num_queries"], "hidden_size": qf["hidden_size"], "num_layers": qf["num_hidden_layers"],
            "num_heads": qf["num_attention_heads"], "intermediate_size": qf["intermediate_size"],
            "cross_attention_freq": qf["cross_attention_frequency"]}})
        model = Blip2Dialogue(bcfg, llm, IMAGE_DIM, image_token_id=0, checkpointing=p["checkpointing"]).to(dev)
        text = s - p["num_queries"]

        def batch():
            ids = torch.randint(10, vocab, (b, text), device=dev)
            labels = ids.clone()
            labels[:, : text // 2] = -100
            return {"image_embeds": torch.randn(b, IMAGE_TOKENS, IMAGE_DIM, device=dev), "input_ids": ids,
                    "attention_mask": torch.ones_like(ids), "labels": labels}
    model.to(dev).train()
    params = [q for q in model.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5, foreach=True)
    scaler = torch.amp.GradScaler(dev.type, enabled=cuda)
    autocast = (lambda: torch.autocast("cuda", dtype=torch.float16)) if cuda else contextlib.nullcontext
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    times = []
    for _ in range(steps):
        sync()
        t0 = time.perf_counter()
        for _ in range(p["accum"]):
            with autocast():
                loss = model(batch())
            scaler.scale(loss / p["accum"]).backward()
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        sync()
        times.append(time.perf_counter() - t0)
    out = {"weights": weights, "peak": torch.cuda.max_memory_allocated() if cuda else 0,
           "reserved": torch.cuda.max_memory_reserved() if cuda else 0, "step_s": min(times),
           "trainable": sum(q.numel() for q in params), "llm_params": sum(q.numel() for q in llm.parameters()),
           "loss": float(loss.detach())}
    del model, llm, opt, params
    if cuda:
        torch.cuda.empty_cache()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", nargs="+", default=["config/tiktalk.yaml"])
    ap.add_argument("--gpu-measure", action="store_true")
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--device", default="cuda", help="cuda; cpu only checks that the steps run (no memory figures)")
    args = ap.parse_args()
    cfg = merged(args.config)
    names = [n for n, r in cfg["baselines"].items() if r["family"] in ("causal_lm", "blip2")]
    print(f"config: {' + '.join(args.config)}; GiB; plan = estimate, micro-batch x seq as trained")
    head = f"{'row':<30}{'batch':>6}{'seq':>5}{'LLM params':>12}{'weights':>9}{'trainable':>11}" \
           f"{'grad+opt':>9}{'activ.':>8}{'plan':>7}"
    if args.gpu_measure:
        head += f"{'meas.weights':>13}{'meas.peak':>10}{'reserved':>9}{'s/step':>8}"
    print(head)
    measured: dict = {}
    for name in names:
        p = plan(name, cfg)
        line = (f"{p['label'][:29]:<30}{p['batch']:>6}{p['seq']:>5}{p['llm_params'] / 1e9:>11.2f}B"
                f"{p['weights'] / GB:>9.2f}{p['trainable'] / 1e6:>10.1f}M{p['train_state'] / GB:>9.2f}"
                f"{p['activations'] / GB:>8.2f}{p['total'] / GB:>7.2f}")
        if args.gpu_measure:
            key = (p["family"], p["batch"], p["seq"], p["arch"].hidden, p["arch"].layers, p["arch"].vocab, p["dtype"])
            if key not in measured:
                measured[key] = measure(p, cfg, args.steps, args.device)
            m = measured[key]
            line += (f"{m['weights'] / GB:>13.2f}{m['peak'] / GB:>10.2f}{m['reserved'] / GB:>9.2f}"
                     f"{m['step_s']:>8.2f}")
        print(line, flush=True)
    print("32 GB V100: the plan and the measured peak (+ ~1 GB CUDA context) must stay below ~31 GiB")


if __name__ == "__main__":
    main()
