"""Maria training-step benchmark: attention-probability dropout 0.1 (BERT) vs 0 (the demo).

With dropout on the attention probabilities torch's scaled-dot-product attention falls back to
its unfused math path on CPU and draws a Bernoulli mask of batch x heads x L x L; with 0 it runs
the fused kernel. The cost grows with the sequence, so the demo's knowledge rows (~100 tokens)
gain most. Prints, in one run, ms per optimizer step (forward, backward, clip, AdamW) for the
demo model on synthetic batches of a visual row (~45 tokens) and a knowledge row (~100 tokens),
the two settings interleaved ``--repeats`` times, and the ratio 0 / 0.1 of the medians.

Usage: python bench/bench_maria_step.py [--steps 30] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from tiktalk.models.maria import Maria, MariaConfig, collate

VOCAB = 2000


def demo_config(attn_dropout: float, knowledge: bool) -> MariaConfig:
    """The demo's Maria (config/config.yaml) with a synthetic vocabulary."""
    return MariaConfig(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
        max_response_len=16, max_text_len=144, max_knowledge_len=64, max_frames=8,
        visual_dim=512, use_visual=True, use_knowledge=knowledge, vocab_size=VOCAB,
        attention_probs_dropout_prob=attn_dropout, know_token_id=5,
        pad_token_id=0, cls_token_id=1, sep_token_id=2, mask_token_id=3, unk_token_id=4)


def batch(cfg: MariaConfig, n: int, context_len: int, knowledge_len: int, rng) -> dict:
    examples = []
    for _ in range(n):
        # lengths vary within a batch as in the demo, so rows are padded
        ctx = rng.integers(10, VOCAB, rng.integers(context_len // 2, 2 * context_len)).tolist()
        know = (rng.integers(10, VOCAB, rng.integers(knowledge_len // 2, 64)).tolist()
                if cfg.use_knowledge else [])
        resp = rng.integers(10, VOCAB, rng.integers(4, 15)).tolist()
        text = ctx + know
        examples.append({
            "resp_ids": [cfg.cls_token_id] + resp + [cfg.sep_token_id], "text_ids": text,
            "text_types": [1] * len(ctx) + [2] * len(know), "text_maskable": [1] * len(text),
            "frames": rng.standard_normal((8, 512)).astype(np.float32), "audio": None})
    return collate(examples, cfg)


def ms_per_step(cfg: MariaConfig, batches: list[dict]) -> float:
    torch.manual_seed(0)
    model = Maria(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, foreach=True)

    def step(b):
        model(b).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for b in batches[:3]:  # warm-up
        step(b)
    t0 = time.perf_counter()
    for b in batches:
        step(b)
    return 1000 * (time.perf_counter() - t0) / len(batches)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch 16, {args.steps} steps, "
          f"{args.repeats} interleaved repeats")
    print(f"{'row':<10} {'tokens':>6} {'dropout 0.1':>12} {'dropout 0':>10} {'ratio':>6}")
    for name, knowledge, ctx_len, know_len in (("visual", False, 20, 0), ("knowledge", True, 20, 53)):
        rng = np.random.default_rng(0)
        cfgs = {p: demo_config(p, knowledge) for p in (0.1, 0.0)}
        batches = [batch(cfgs[0.1], 16, ctx_len, know_len, rng) for _ in range(args.steps)]
        times = {p: [] for p in cfgs}
        for _ in range(args.repeats):
            for p, cfg in cfgs.items():
                times[p].append(ms_per_step(cfg, batches))
        med = {p: statistics.median(t) for p, t in times.items()}
        tokens = round(statistics.mean(b["input_ids"].shape[1] for b in batches)) + 8
        print(f"{name:<10} {tokens:>6} {med[0.1]:>10.1f}ms {med[0.0]:>8.1f}ms "
              f"{med[0.0] / med[0.1]:>6.2f}")


if __name__ == "__main__":
    main()
