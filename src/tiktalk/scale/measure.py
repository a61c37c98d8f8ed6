"""What every job of the scale rehearsal cost, against the size of the data it read.

Snakemake writes one benchmark file per job (``results/benchmarks/<rule>[/<wildcards>].tsv``:
wall seconds ``s``, peak resident memory ``max_rss`` in MB summed over the job's processes,
CPU seconds, I/O). :func:`collect_runs` reads them from the working directory of each scale run
(``tiktalk rehearse scale`` writes ``scale.json`` there with the run's fraction and counts) and
gives each job its ``items``: the number of things its input holds (dialogues, videos,
candidates), from its rule and wildcards (:func:`job_items`). :func:`growth` fits how a job's
time and memory grow with its items between runs, and :func:`check_budgets` states the
budgets of a real run against them (docs/scale.md).
"""

from __future__ import annotations

import csv
import math
import os
import re
from pathlib import Path
from typing import Iterable, Sequence

from tiktalk.io import read_json, write_text_atomic
from tiktalk.logs import PEAK_RSS_PREFIX

SPLITS = ("train", "val", "test")
COLUMNS = ("fraction", "rule", "job", "family", "items", "s", "max_rss_mb", "peak_self_mb", "peak_child_mb",
           "cpu_s", "io_in_mb", "io_out_mb")
# rules whose cost is per shard (many jobs, each of a fixed size): their items are a shard's videos
PER_SHARD = {"adopt_shard", "fetch_shard", "extract_shard"}
# rules that read data and must grow at most linearly with it
DATA_STAGES = {"build_split", "build_split_with_references", "manifest", "media_coverage",
               "media_report", "retrieve_knowledge", "ranking_candidates", "table2", "table5",
               "score", "human_eval_sheets", "context_sources_sheets"}
# rules whose input is the test split (the annotation kits, the cases page)
TEST_SPLIT_READERS = {"human_eval_sheets", "human_eval_pages", "context_sources_sheets",
                      "context_sources_pages", "annotation_frames", "figure4_cases"}
# jobs that train or decode: their memory must not grow with the data beyond an index
MODEL_STAGES = {"train_baseline", "predict", "rank"}
_PEAK_RE = re.compile(re.escape(PEAK_RSS_PREFIX) + r" self ([0-9.]+) MB, largest child ([0-9.]+) MB")
TRAIN_GROWTH_LIMIT_MB = 2048        # 10% -> 100% of the data adds at most this to a training job
PEAK_LIMIT_MB = 16 * 1024           # every job at the release's size
EXPONENT_LIMIT = 1.1
# A data stage's growth is judged on its CPU seconds when both runs recorded at least this
# many: wall time on a machine that runs other jobs beside it measures the neighbours too (a
# job of 4 CPU seconds took 23 s of wall time at full size beside two rankings). Snakemake
# samples a job's CPU time while it runs, so a short job's is if anything too low, which can
# only raise the exponent measured from the smaller run: the check stays on the safe side.
CPU_FLOOR_S = 0.2


def _split_of(job: str) -> str | None:
    last = job.rsplit("_", 1)[-1]
    return last if last in SPLITS else (job if job in SPLITS else None)


def job_items(rule: str, job: str, counts: dict, shard_size: int = 256, n_candidates: int = 100) -> int:
    """How many things the job's input holds: dialogues of its split (training: the train
    split), videos, or dialogue x candidate pairs (ranking)."""
    dialogues = {s: int(counts[s]["dialogues"]) for s in SPLITS}
    videos = sum(int(counts[s]["videos"]) for s in SPLITS)
    split = _split_of(job)
    if rule in PER_SHARD:
        return shard_size
    if rule == "train_baseline":
        return dialogues["train"]
    if rule == "rank":
        return dialogues[split or "test"] * n_candidates
    if rule in ("manifest", "media_coverage", "media_report", "table5", "coverage_floor"):
        return videos
    if rule in TEST_SPLIT_READERS:
        return dialogues["test"]
    if split is not None:
        return dialogues[split]
    return sum(dialogues.values())


def read_benchmark(path: Path) -> dict:
    """The last row of a Snakemake benchmark file (a re-run job appends one)."""
    with open(path, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    if not rows:
        raise ValueError(f"{path}: an empty benchmark file")
    return rows[-1]


def _num(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def read_peak(log_path: Path) -> tuple[float, float]:
    """(self, largest child) peak RSS in MB from a job log's last ``peak RSS:`` line
    (:func:`tiktalk.logs.script_logging`); NaNs when the log has none."""
    found = (float("nan"), float("nan"))
    if log_path.exists():
        for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            m = _PEAK_RE.search(line)
            if m:
                found = (float(m.group(1)), float(m.group(2)))
    return found


def family_of(job: str, families: dict[str, str]) -> str:
    """The family of a baseline job (``<baseline>`` or ``<baseline>_<split>``), else ""."""
    if job in families:
        return families[job]
    base = job.rsplit("_", 1)[0] if _split_of(job) else job
    return families.get(base, "")


def collect_run(run_dir: Path, families: dict[str, str] | None = None) -> list[dict]:
    """One row per job of one scale run (its working directory); ``families``: baseline ->
    family of the run's config."""
    run_dir = Path(run_dir)
    meta = read_json(run_dir / "scale.json")
    counts, fraction = meta["counts"], float(meta["spec"]["fraction"])
    shard_size = int(meta["spec"].get("shard_size", 256))
    bench = run_dir / "results" / "benchmarks"
    if not bench.is_dir():
        raise FileNotFoundError(f"{bench}: no benchmark files (has the run started?)")
    rows = []
    for path in sorted(bench.rglob("*.tsv")):
        rel = path.relative_to(bench)
        rule = rel.parts[0] if len(rel.parts) > 1 else path.stem
        job = path.stem if len(rel.parts) > 1 else ""
        b = read_benchmark(path)
        own, child = read_peak(run_dir / "results" / "logs" / rel.with_suffix(".log"))
        rows.append({"fraction": fraction, "rule": rule, "job": job,
                     "family": family_of(job, families or {}) if rule in MODEL_STAGES else "",
                     "items": job_items(rule, job, counts, shard_size),
                     "s": _num(b.get("s")), "max_rss_mb": _num(b.get("max_rss")),
                     "peak_self_mb": own, "peak_child_mb": child,
                     "cpu_s": _num(b.get("cpu_time")), "io_in_mb": _num(b.get("io_in")),
                     "io_out_mb": _num(b.get("io_out"))})
    return rows


def collect_runs(run_dirs: Iterable[Path], families: dict[str, str] | None = None) -> list[dict]:
    rows = [r for d in run_dirs for r in collect_run(d, families)]
    return sorted(rows, key=lambda r: (r["rule"], r["job"], r["fraction"]))


def write_scale_table(rows: Sequence[dict], path: str | os.PathLike) -> None:
    lines = [",".join(COLUMNS)]
    for r in rows:
        lines.append(",".join(str(r[c]) if not isinstance(r[c], float) else f"{r[c]:.6g}" for c in COLUMNS))
    write_text_atomic(path, "\n".join(lines) + "\n")


def read_scale_table(path: str | os.PathLike) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        for k in COLUMNS:
            if k not in ("rule", "job", "family"):
                r[k] = float(r[k])
    return rows


def _slope(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Least-squares slope of log(y) on log(x); None with fewer than two usable points."""
    pts = [(math.log(x), math.log(y)) for x, y in zip(xs, ys) if x > 0 and y > 0]
    if len({p[0] for p in pts}) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    num = sum((x - mx) * (y - my) for x, y in pts)
    den = sum((x - mx) ** 2 for x, _ in pts)
    return num / den


def growth(rows: Sequence[dict], top: int = 2) -> list[dict]:
    """Per job (rule and wildcards), the exponent b of time ~ items^b and memory ~ items^b
    between its ``top`` largest runs (the smallest fractions measure start-up, not data), and
    its time and peak memory at the largest."""
    by_job: dict[tuple[str, str], list[dict]] = {}
    for r in per_shard_as_one(rows):
        by_job.setdefault((r["rule"], r["job"]), []).append(r)
    out = []
    for (rule, job), rs in sorted(by_job.items()):
        rs = sorted(rs, key=lambda r: r["items"])[-top:]
        out.append({"rule": rule, "job": job, "items": rs[-1]["items"],
                    "fraction": rs[-1]["fraction"], "s": rs[-1]["s"], "max_rss_mb": rs[-1]["max_rss_mb"],
                    "time_exponent": _slope([r["items"] for r in rs], [r["s"] for r in rs]),
                    "cpu_exponent": (_slope([r["items"] for r in rs], [r["cpu_s"] for r in rs])
                                     if all(r.get("cpu_s", 0) >= CPU_FLOOR_S for r in rs) else None),
                    "memory_exponent": _slope([r["items"] for r in rs], [r["max_rss_mb"] for r in rs])})
    return out


def per_shard_as_one(rows: Sequence[dict]) -> list[dict]:
    """Rows with each per-shard rule of a run as one row (job "per shard"): its costliest job,
    and as items all the videos of its shards (the work that grows with the data is the
    number of shards; a job's own cost is a shard's)."""
    out, shards = [], {}
    for r in rows:
        if r["rule"] not in PER_SHARD:
            out.append(r)
            continue
        key = (r["rule"], r["fraction"])
        cur = shards.setdefault(key, dict(r, job="per shard", items=0))
        cur["items"] += r["items"]
        for k in ("s", "max_rss_mb", "peak_self_mb", "peak_child_mb"):
            if r[k] > cur[k] or cur[k] != cur[k]:
                cur[k] = r[k]
    return out + list(shards.values())


def check_budgets(rows: Sequence[dict]) -> list[dict]:
    """The budgets of the largest run, one record each: ``{"budget", "job", "value", "limit",
    "ok"}``: every job's peak memory; a training job's growth from the second-largest to the
    largest run; the data stages' time exponents."""
    if not rows:
        return []
    top = max(r["fraction"] for r in rows)
    fractions = sorted({r["fraction"] for r in rows})
    second = fractions[-2] if len(fractions) > 1 else None
    out = []
    for r in rows:
        if r["fraction"] == top:
            out.append({"budget": "peak memory (MB)", "job": f"{r['rule']}/{r['job']}".rstrip("/"),
                        "value": r["max_rss_mb"], "limit": PEAK_LIMIT_MB,
                        "ok": r["max_rss_mb"] <= PEAK_LIMIT_MB})
    if second is not None:
        at = {(r["rule"], r["job"], r["fraction"]): r for r in rows}
        for r in rows:
            if r["rule"] == "train_baseline" and r["fraction"] == top and (r["rule"], r["job"], second) in at:
                grown = r["max_rss_mb"] - at[(r["rule"], r["job"], second)]["max_rss_mb"]
                out.append({"budget": f"training memory growth {second:g} -> {top:g} (MB)",
                            "job": f"train_baseline/{r['job']}", "value": round(grown, 1),
                            "limit": TRAIN_GROWTH_LIMIT_MB, "ok": grown <= TRAIN_GROWTH_LIMIT_MB})
        for g in growth(rows):
            if g["rule"] not in DATA_STAGES:
                continue
            cpu = g["cpu_exponent"] is not None
            exponent = g["cpu_exponent"] if cpu else g["time_exponent"]
            if exponent is not None:
                out.append({"budget": f"time exponent (data stage, {'CPU' if cpu else 'wall'} s)",
                            "job": f"{g['rule']}/{g['job']}".rstrip("/"),
                            "value": round(exponent, 3), "limit": EXPONENT_LIMIT,
                            "ok": exponent <= EXPONENT_LIMIT})
    return out


def write_budgets(checks: Sequence[dict], path: str | os.PathLike) -> None:
    lines = ["budget,job,value,limit,ok"]
    lines += [f"{c['budget']},{c['job']},{c['value']},{c['limit']},{c['ok']}" for c in checks]
    write_text_atomic(path, "\n".join(lines) + "\n")


def plot_scale(rows: Sequence[dict], path: str | os.PathLike) -> None:
    """Time and peak memory of each stage against the fraction (log-log); per-shard stages
    as their largest job."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages: dict[str, dict[float, dict]] = {}
    for r in rows:
        name = r["rule"] if r["rule"] in PER_SHARD or not r["job"] else f"{r['rule']}/{r['job']}"
        cur = stages.setdefault(name, {}).get(r["fraction"])
        if cur is None or r["s"] > cur["s"]:
            stages[name][r["fraction"]] = r
    fig, axes = plt.subplots(1, 2, figsize=(13, 6))
    for name, by_f in sorted(stages.items()):
        fs = sorted(by_f)
        if len(fs) < 2:
            continue
        for ax, key in zip(axes, ("s", "max_rss_mb")):
            ax.plot(fs, [by_f[f][key] for f in fs], marker="o", lw=1, label=name)
    for ax, title in zip(axes, ("wall time (s)", "peak RSS (MB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("fraction of TikTalk's size")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize=6, ncol=2, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
