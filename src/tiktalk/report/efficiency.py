"""Table 7 of the paper, training efficiency: minutes per epoch of the Maria models with each
combination of modalities, and the increase over the row the paper compares each with.

Rows (the paper's, appendix B): M1 T, M2 T+I, M3 T+I+A, M4 T+I+K, M5 T+I+A+K, compared M2 vs
M1, M3 vs M2, M4 vs M2, M5 vs M3. A Maria-family baseline falls in the row of its modalities
(``use_visual`` = I, ``use_audio`` = A, ``use_knowledge`` = K, the text always); M5 is no row of
Table 3 (config ``table3: false``). The first baseline of a row in config order is used.

Times come from each training job's own ``train_log.jsonl`` (:mod:`tiktalk.training.trainer`),
not from a separate timing run: the record that closes epoch e carries ``seconds`` since the
training loop started in that process; an epoch's time is the difference to the previous
epoch's record of the same process, the first epoch's is its own ``seconds``. An epoch cut by a
restart (``seconds`` going down: the job resumed from a checkpoint) is left out. Minutes per
epoch = the mean over the complete epochs, validation loss included (the trainer evaluates the
val split at the end of every epoch). Beside each number: what it depends on, from the same
records (device and count, CPU threads, batch, training examples).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

from tiktalk.io import read_jsonl, write_text_atomic
from tiktalk.report.render import Block, Column, data_source_name, to_csv, to_latex, to_markdown

PAPER_CITATION = "TikTalk, arXiv 2301.05880, Table 7"
PAPER_HARDWARE = "4 x Nvidia V100 (32G)"
# row: (modalities, (visual, audio, knowledge), compared with, paper min/epoch)
ROWS = {
    "M1": ("T", (False, False, False), None, 10.0),
    "M2": ("T+I", (True, False, False), "M1", 17.5),
    "M3": ("T+I+A", (True, True, False), "M2", 24.0),
    "M4": ("T+I+K", (True, False, True), "M2", 30.0),
    "M5": ("T+I+A+K", (True, True, True), "M3", 37.0),
}
# the paper's printed increases (its rounding): 17.5 / 10 = +75%, 24 / 17.5 = +37%, ...
PAPER_INCREASE = {"M2": 75, "M3": 37, "M4": 71, "M5": 54}
COLUMNS = (
    Column("minutes", "min/epoch", "{:.2f}", better="low"),
    Column("increase", "vs. row", "{}"),
    Column("paper_minutes", "Paper min/epoch", "{:g}"),
    Column("paper_increase", "Paper vs. row", "{}"),
)
CSV_FIELDS = ("row", "modalities", "baseline", "label", "minutes", "compared_with", "increase_pct",
              "epochs_timed", "device", "threads", "batch_size", "samples", "paper_minutes",
              "paper_increase_pct")


def row_of(baseline: Mapping) -> str | None:
    """The Table 7 row of a baseline's config block (Maria family), else None."""
    if baseline.get("family") != "maria":
        return None
    model = (baseline.get("params") or {}).get("model") or {}
    flags = (bool(model.get("use_visual", True)), bool(model.get("use_audio", False)),
             bool(model.get("use_knowledge", False)))
    return next((row for row, (_, f, _, _) in ROWS.items() if f == flags), None)


def rows_of(baselines: Mapping[str, Mapping]) -> dict[str, str]:
    """Table 7 row -> the first baseline (config order) with its modalities, in row order
    (M1, M2, ...: the same mapping whatever the order of the baselines)."""
    out: dict[str, str] = {}
    for name, cfg in baselines.items():
        row = row_of(cfg)
        if row is not None and row not in out:
            out[row] = name
    return dict(sorted(out.items()))


def epoch_times(log_path: str | os.PathLike) -> tuple[list[float], dict]:
    """(seconds of every complete epoch, the setup fields of the last epoch record).

    Epoch e's time is ``seconds`` of its closing record minus that of epoch e-1 when both come
    from the same process (same ``started``; logs without it: ``seconds`` went up), or its own
    ``seconds`` for epoch 0. The first epoch of a resumed process is left out (it may have
    resumed mid-epoch)."""
    records = read_jsonl(log_path)
    last: dict[int, dict] = {}
    for rec in records:
        if "epoch" not in rec or "seconds" not in rec:
            raise ValueError(f"{log_path}: a record without epoch/seconds: {rec}")
        last[int(rec["epoch"])] = rec            # the last record of an epoch closes it
    if not last:
        raise ValueError(f"{log_path}: no epoch record (did the training run?)")
    times = []
    for e in sorted(last):
        rec, prev = last[e], last.get(e - 1)
        s = float(rec["seconds"])
        if prev is None:
            if e == 0:
                times.append(s)
            continue
        if "started" in rec or "started" in prev:
            same = rec.get("started") == prev.get("started")
        else:
            same = s > float(prev["seconds"])
        if same:
            times.append(s - float(prev["seconds"]))
    setup = {k: last[max(last)].get(k) for k in
             ("samples", "batch_size", "grad_accum_steps", "world_size", "device", "device_name", "threads")}
    return times, setup


def hardware_text(setup: Mapping) -> str:
    if not setup.get("device"):
        return "unknown (train_log.jsonl of an older trainer)"
    world = setup.get("world_size") or 1
    if setup["device"] == "cuda":
        return f"{world} x {setup.get('device_name') or 'GPU'}"
    threads = setup.get("threads")
    return f"CPU, {world} process(es) x {threads} thread(s)" if world > 1 else f"CPU, {threads} thread(s)"


def _pct(new: float | None, old: float | None) -> float | None:
    return None if new is None or not old else 100.0 * (new / old - 1.0)


def table7_rows(logs: Mapping[str, str | os.PathLike], rows: Mapping[str, str],
                labels: Mapping[str, str] | None = None) -> list[dict]:
    """One dict per Table 7 row (M1..M5): ours from ``logs`` (baseline -> train_log.jsonl;
    ``rows``: Table 7 row -> baseline), the paper's beside. A row without a run is empty."""
    labels = labels or {}
    minutes: dict[str, float | None] = {}
    out = []
    for row, (mods, _, _, paper_min) in ROWS.items():
        name = rows.get(row)
        rec = {"row": row, "modalities": mods, "baseline": name or "", "label": labels.get(name, name or ""),
               "minutes": None, "epochs_timed": 0, "device": "", "threads": None, "batch_size": None,
               "samples": None, "paper_minutes": paper_min}
        if name is not None:
            times, setup = epoch_times(logs[name])
            if times:
                rec["minutes"] = sum(times) / len(times) / 60.0
            rec.update(epochs_timed=len(times), device=hardware_text(setup), threads=setup.get("threads"),
                       batch_size=setup.get("batch_size"), samples=setup.get("samples"))
        minutes[row] = rec["minutes"]
        out.append(rec)
    for rec in out:
        base = ROWS[rec["row"]][2]
        rec["compared_with"] = base or ""
        rec["increase_pct"] = _pct(rec["minutes"], minutes.get(base)) if base else None
        rec["paper_increase_pct"] = PAPER_INCREASE.get(rec["row"])
    return out


def _increase_text(row: str, pct: float | None) -> str | None:
    base = ROWS[row][2]
    if base is None:
        return ""
    return None if pct is None else f"vs. {base}, {pct:+.0f}%"


def caption(rows: Sequence[Mapping], data_source: str) -> str:
    ours = [r for r in rows if r["minutes"] is not None]
    setups = sorted({(r["device"], r["batch_size"], r["samples"]) for r in ours}, key=str)
    where = "; ".join(f"{d}, batch {b}, {s:,} training examples" if s is not None else d
                      for d, b, s in setups)
    return (f"Training efficiency (minutes per epoch, validation included) of Maria with different "
            f"modalities on {data_source_name(data_source)}: text (T), image (I), audio (A), "
            f"knowledge (K). Ours: {where or 'no run'}. Paper: {PAPER_HARDWARE}, the TikTalk "
            f"training set.")


def build_table7(logs: Mapping[str, str | os.PathLike], rows: Mapping[str, str],
                 labels: Mapping[str, str], out_csv, out_md, out_tex, out_png, *,
                 data_source: str) -> list[dict]:
    """Write Table 7 (csv, md, tex) and its bar chart (ours vs the paper's, per row)."""
    table = table7_rows(logs, rows, labels)
    write_text_atomic(out_csv, to_csv(CSV_FIELDS, table, {"minutes": "{:.3f}", "increase_pct": "{:.1f}"}))
    display = [{"label": f"{r['row']}: {r['modalities']}" + (f" ({r['label']})" if r["label"] else ""),
                "minutes": r["minutes"] if r["baseline"] else "no run",
                "increase": _increase_text(r["row"], r["increase_pct"]),
                "paper_minutes": r["paper_minutes"],
                "paper_increase": _increase_text(r["row"], r["paper_increase_pct"])} for r in table]
    blocks = [Block(None, display)]
    cap = caption(table, data_source)
    write_text_atomic(out_md, to_markdown(COLUMNS, blocks, cap, "Modalities"))
    write_text_atomic(out_tex, to_latex(COLUMNS, blocks, cap, "tab:table7", "Modalities"))
    plot_table7(table, out_png)
    return table


def plot_table7(table: Sequence[Mapping], out_png: str | os.PathLike) -> None:
    """Two panels: our minutes per epoch and the paper's, per row (different hardware, so
    different axes), with the increases over the compared row written on the bars."""
    import numpy as np
    from matplotlib.figure import Figure

    from tiktalk.report.plots import OURS_COLOR, PAPER_COLOR, save_figure

    names = [f"{r['row']}\n{r['modalities']}" for r in table]
    x = np.arange(len(table))
    fig = Figure(figsize=(9, 3.4), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, key, pct, colour, title in (
            (axes[0], "minutes", "increase_pct", OURS_COLOR, "ours (min/epoch)"),
            (axes[1], "paper_minutes", "paper_increase_pct", PAPER_COLOR, f"paper, {PAPER_HARDWARE}")):
        values = np.array([np.nan if r[key] is None else r[key] for r in table], dtype=float)
        ax.bar(x, values, color=colour, edgecolor="#555555", linewidth=0.5)
        for xi, r, v in zip(x, table, values):
            if r[pct] is not None and np.isfinite(v):
                ax.annotate(f"{r[pct]:+.0f}%", (xi, v), ha="center", va="bottom", fontsize=8)
        ax.set_xticks(x, names, fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    fig.suptitle("Table 7: training efficiency of Maria by modalities", fontsize=11)
    save_figure(fig, Path(out_png))
