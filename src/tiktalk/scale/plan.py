"""The cost of a real run before it starts: ``tiktalk plan`` (``results/plan.md``).

For a config and a SLURM profile, per stage: the number of jobs, GPU-hours, disk (videos,
features, image tokens, checkpoints) and each job's peak host memory, with the profile's
request beside it; then the wall time on N nodes of 4 x V100. Every figure says where it comes
from:

* ``measured``: the scale rehearsal at the release's size (``scale.csv``, the peak memory and
  CPU time of the data stages and of each family's data path, :mod:`tiktalk.scale.measure`);
* ``format``: computed from the file formats (feature and image-token bytes);
* ``Table 7``: the paper's minutes per epoch of the Maria family on 4 x V100;
* ``estimate``: a stated per-item cost from ``costs.yaml`` beside this module (edit it, or
  pass ``--costs``, with your cluster's figures).

The wall time assumes the phases run one after the other (media, retrieval, training,
decoding and ranking, tables), the trainings longest first on whole nodes (the BLIP-2 rows after
the LLM they start from), and the one-GPU jobs spread over every GPU.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tiktalk.families.registry import get as family
from tiktalk.scale.generate import (AUDIO_DIM, AUDIO_HOP_S, IMAGE_DIM, IMAGE_TOKENS, MAX_AUDIO,
                                    MAX_FRAMES, VISUAL_DIM, paper_counts)

COSTS = Path(__file__).with_name("costs.yaml")
MEASURED = Path(__file__).with_name("measured.csv")   # the scale rehearsal at fraction 1.0
GPUS_PER_NODE = 4
GB = 1e9


@dataclass
class Line:
    stage: str
    jobs: int
    gpu_hours: float
    disk_gb: float
    ram_gb: float
    asks_gb: float | None              # the profile's mem_mb at the first attempt
    sources: list[str] = field(default_factory=list)
    hours_per_job: float = 0.0         # wall hours of one job
    gpus_per_job: int = 0

    @property
    def enough(self) -> bool:
        return self.asks_gb is None or self.asks_gb >= self.ram_gb


def _profile_mem_gb(profile: dict, rule: str) -> float | None:
    """The profile's mem_mb of ``rule`` at attempt 1, in GB (None: not set)."""
    res = (profile.get("set-resources") or {}).get(rule) or {}
    value = res.get("mem_mb", (profile.get("default-resources") or {}).get("mem_mb"))
    if value is None:
        return None
    return float(eval_resource(value, attempt=1)) / 1000.0


def eval_resource(value, attempt: int = 1, env: dict | None = None) -> float:
    """A profile resource: a number, or a Python expression of ``attempt`` (as Snakemake
    evaluates it), with ``os.environ`` replaced by ``env`` when given."""
    if isinstance(value, (int, float)):
        return float(value)
    environ = dict(os.environ if env is None else env)

    class _Os:
        pass

    fake_os = _Os()
    fake_os.environ = environ

    def _import(name, *a, **k):
        return fake_os if name == "os" else __import__(name, *a, **k)

    return float(eval(str(value), {"__builtins__": {"__import__": _import, "min": min, "max": max,
                                                     "int": int, "float": float}},
                      {"attempt": attempt}))


def _measured_peak_gb(measured: list[dict], rule: str, job: str | None = None) -> float | None:
    rows = [r for r in measured if r["rule"] == rule and (job is None or r["job"] == job)]
    if not rows:
        return None
    return max(max(r["max_rss_mb"], r["peak_self_mb"] + r["peak_child_mb"])
               for r in rows if r["max_rss_mb"] == r["max_rss_mb"]) / 1000.0


def _family_job(measured: list[dict], rule: str, family: str) -> str | None:
    """The scale run's job of ``rule`` for the row of ``family``."""
    return next((r["job"] for r in measured if r["rule"] == rule and r.get("family") == family), None)


def maria_inputs(baseline: dict) -> str:
    """The Table 7 input set of a Maria-family row: T, T+I, T+I+A, T+I+K, T+I+A+K, T+A, T+K."""
    m = baseline.get("params", {}).get("model", {})
    return "T" + "+I" * bool(m.get("use_visual")) + "+A" * bool(m.get("use_audio")) + "+K" * bool(m.get("use_knowledge"))


def build_plan(config: dict, profile: dict, costs: dict, measured: list[dict],
               fraction: float = 1.0) -> list[Line]:
    counts = paper_counts(fraction)
    videos = sum(c.videos for c in counts.values())
    dialogues = {s: c.dialogues for s, c in counts.items()}
    shard_size = int(config.get("data", {}).get("shard_size", 256))
    shards = math.ceil(videos / shard_size)
    media, lines = costs["media"], []
    # rows with jobs to plan (an external row brings its predictions: no training, no decoding)
    rows = {b: v for b, v in config["baselines"].items() if family(v["family"]).trains}
    image_rows = {b for b, v in rows.items() if "image_features" in family(v["family"]).reads}
    n_views = len({rows[b]["params"]["model"].get("mode", "img") for b in image_rows})
    img_frames = int(config["media"]["image_encoder"].get("n_frames", 8)) if image_rows else 0

    # media: fetch (login node), extract (GPU)
    lines.append(Line("fetch_shard (videos)", shards, 0.0, videos * media["video_mb"] / 1000.0,
                      2.0, _profile_mem_gb(profile, "fetch_shard"),
                      [f"estimate: {media['video_mb']} MB a video"], hours_per_job=1.0))
    audio_rows = min(MAX_AUDIO, 34.0 / AUDIO_HOP_S)
    feat_gb = videos * (MAX_FRAMES * VISUAL_DIM + audio_rows * AUDIO_DIM) * 2 / GB
    view_gb = videos * n_views * IMAGE_TOKENS * IMAGE_DIM * 2 / GB
    per_video_s = max(media["decode_s_per_video"] / media["decode_cores"],
                      MAX_FRAMES / media["resnet_frames_per_s"] + img_frames / media["vit_frames_per_s"])
    extract_h = shard_size * per_video_s / 3600
    lines.append(Line("extract_shard (features, image views)", shards, shards * extract_h,
                      feat_gb + view_gb, media["ram_gb"], _profile_mem_gb(profile, "extract_shard"),
                      [f"format: {feat_gb:.1f} GB features + {view_gb:.1f} GB image views ({n_views} a video)",
                       f"measured: decode {media['decode_s_per_video']} s a video on one core",
                       "estimate: CNN / ViT throughput"], hours_per_job=extract_h, gpus_per_job=1))
    # retrieval, three splits
    n_ctx = sum(dialogues.values())
    ret = costs["retrieval"]
    heads = 250_000
    ret_h = (n_ctx + 3 * heads) / ret["sentences_per_s"] / 3600
    peak = _measured_peak_gb(measured, "retrieve_knowledge")
    lines.append(Line("retrieve_knowledge", 3, ret_h, 0.1, (peak or 0) + ret["ram_gb"],
                      _profile_mem_gb(profile, "retrieve_knowledge"),
                      [f"estimate: {ret['sentences_per_s']} sentences/s"]
                      + ([f"measured: {peak:.1f} GB data peak"] if peak else []),
                      hours_per_job=ret_h / 3, gpus_per_job=1))
    # one training, decoding and ranking job per row
    splits = list(config.get("evaluation", {}).get("splits", ["test"]))
    n_rank = sum(dialogues[s] for s in config.get("paper_tables", {}).get("ranking", {}).get("splits", ["test"]))
    n_cand = int(config.get("paper_tables", {}).get("ranking", {}).get("n_candidates", 100))
    for name, b in rows.items():
        fam = b["family"]
        tcfg = b.get("params", {}).get("train", {})
        epochs = int(tcfg.get("epochs", 1))
        if fam == "maria":
            key = maria_inputs(b)
            minutes = costs["training"]["maria"][key]
            src = f"Table 7: {minutes} min/epoch ({key})" if key in ("T", "T+I", "T+I+A", "T+I+K", "T+I+A+K") \
                else f"estimate from Table 7: {minutes} min/epoch ({key})"
        else:
            minutes = costs["training"][fam]
            src = f"estimate: {minutes} min/epoch"
        hours = epochs * minutes / 60
        job = _family_job(measured, "train_baseline", fam)
        data = _measured_peak_gb(measured, "train_baseline", job) if job else None
        ram = GPUS_PER_NODE * (costs["model_ram_gb"][fam] + (data or 0))
        lines.append(Line(f"train_baseline[{name}]", 1, GPUS_PER_NODE * hours, costs["checkpoint_gb"][fam], ram,
                          _profile_mem_gb(profile, "train_baseline"),
                          [f"{src} x {epochs} epochs", f"estimate: {costs['model_ram_gb'][fam]} GB a rank for the model"]
                          + ([f"measured: {data:.1f} GB a rank for the data path"] if data else []),
                          hours_per_job=hours, gpus_per_job=GPUS_PER_NODE))
        dec = costs["decode_dialogues_per_s"][fam]
        dec_h = sum(dialogues[s] for s in splits) / dec / 3600
        pjob = _family_job(measured, "predict", fam)
        pdata = _measured_peak_gb(measured, "predict", pjob) if pjob else None
        lines.append(Line(f"predict[{name}]", len(splits), dec_h, 0.01, costs["model_ram_gb"][fam] + (pdata or 0),
                          _profile_mem_gb(profile, "predict"), [f"estimate: {dec} dialogues/s"]
                          + ([f"measured: {pdata:.1f} GB data path"] if pdata else []),
                          hours_per_job=dec_h / len(splits), gpus_per_job=1))
        rate = costs["rank_pairs_per_s"][fam]
        rank_h = n_rank * n_cand / rate / 3600
        rjob = _family_job(measured, "rank", fam)
        rdata = _measured_peak_gb(measured, "rank", rjob) if rjob else None
        lines.append(Line(f"rank[{name}]", 1, rank_h, 0.01, costs["model_ram_gb"][fam] + (rdata or 0),
                          _profile_mem_gb(profile, "rank"),
                          [f"estimate: {rate} candidates/s, {n_rank} x {n_cand} candidates"]
                          + ([f"measured: {rdata:.1f} GB data path"] if rdata else []),
                          hours_per_job=rank_h, gpus_per_job=1))
    # CPU stages measured at full size: build_split, manifest, scoring, tables, kits
    for rule in ("build_split", "manifest", "score", "table2", "table3", "ranking_table",
                 "human_eval_sheets", "context_sources_sheets"):
        rs = [r for r in measured if r["rule"] == rule]
        if rs:
            hours = max(r["s"] for r in rs) / 3600
            lines.append(Line(rule, len({r["job"] for r in rs}) if rule != "score" else len(rows) * len(splits),
                              0.0, 0.0, _measured_peak_gb(measured, rule) or 0, _profile_mem_gb(profile, rule),
                              [f"measured: {max(r['s'] for r in rs):.0f} s a job at full size (2-core machine)"],
                              hours_per_job=hours))
    return lines


def wall_hours(lines: list[Line], nodes: int) -> dict[str, float]:
    """Phase by phase: media, retrieval, training (whole nodes, longest first, BLIP-2 after
    its LLM), decoding + ranking, CPU stages."""
    gpus = nodes * GPUS_PER_NODE

    def spread(ls):
        total = sum(l.gpu_hours for l in ls)
        longest = max((l.hours_per_job for l in ls), default=0.0)
        return max(total / gpus, longest)

    phases = {
        "media": spread([l for l in lines if l.stage.startswith("extract_shard")]),
        "retrieval": spread([l for l in lines if l.stage == "retrieve_knowledge"]),
    }
    trains = sorted((l for l in lines if l.stage.startswith("train_baseline")), key=lambda l: -l.hours_per_job)
    llm = [l for l in trains if "chatglm" in l.stage or "causal" in l.stage]
    free = [0.0] * nodes
    llm_end = 0.0
    for l in llm + [t for t in trains if t not in llm]:
        i = min(range(nodes), key=free.__getitem__)
        start = max(free[i], llm_end if "blip2" in l.stage else 0.0)
        free[i] = start + l.hours_per_job
        if l in llm:
            llm_end = max(llm_end, free[i])
    phases["training"] = max(free) if trains else 0.0
    phases["decoding and ranking"] = spread([l for l in lines if l.stage.startswith(("predict", "rank"))])
    phases["tables (CPU)"] = sum(l.hours_per_job for l in lines if l.gpus_per_job == 0 and not l.stage.startswith("fetch"))
    phases["total"] = sum(phases.values())
    return phases


def render_plan(lines: list[Line], nodes: int, config_name: str, profile_name: str,
                measured_name: str) -> str:
    out = [f"# Cost plan: {config_name} on {nodes} node(s) of {GPUS_PER_NODE} x V100", "",
           f"Profile `{profile_name}`; measured figures from `{measured_name}` (the scale rehearsal "
           f"at TikTalk's size). Sources: measured, format, Table 7 or estimate "
           f"(tiktalk/scale/costs.yaml).", "",
           "| stage | jobs | GPU-hours | disk (GB) | peak RAM a job (GB) | profile asks (GB) | source |",
           "|---|---:|---:|---:|---:|---:|---|"]
    for l in lines:
        asks = "-" if l.asks_gb is None else f"{l.asks_gb:.0f}" + ("" if l.enough else " (too little)")
        out.append(f"| {l.stage} | {l.jobs} | {l.gpu_hours:.1f} | {l.disk_gb:.1f} | {l.ram_gb:.1f} | "
                   f"{asks} | {'; '.join(l.sources)} |")
    total_gpu = sum(l.gpu_hours for l in lines)
    total_disk = sum(l.disk_gb for l in lines)
    out += ["", f"**Total: {sum(l.jobs for l in lines)} jobs, {total_gpu:.0f} GPU-hours, "
                f"{total_disk:.0f} GB of disk.**", "", f"Wall time on {nodes} node(s):", ""]
    for phase, hours in wall_hours(lines, nodes).items():
        out.append(f"- {phase}: {hours:.1f} h" + (f" ({hours / 24:.1f} days)" if phase == "total" else ""))
    short = [l.stage for l in lines if not l.enough]
    if short:
        out += ["", "**The profile asks for less memory than these jobs need:** " + ", ".join(short)]
    return "\n".join(out) + "\n"


def load_yaml(path: str | os.PathLike) -> dict:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh) or {}
