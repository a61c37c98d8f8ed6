"""Tables 2 and 7 and the shared table rendering: counts on small real inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from tiktalk.io import write_jsonl
from tiktalk.media.tables import status_row, write_status
from tiktalk.report.data_division import build_table2, dialogue_counts, paper_checks, table2_rows
from tiktalk.report.efficiency import build_table7, epoch_times, row_of, rows_of, table7_rows
from tiktalk.report.render import Block, Column, best_cells, to_latex

torch.set_num_threads(1)


# -- rendering ---------------------------------------------------------------------------------
def test_latex_bolds_the_best_per_column_inside_each_block():
    cols = (Column("a", "A", better="high"), Column("b", "B", better="low"), Column("c", "C"))
    ours = [{"label": "x_1", "a": 1.0, "b": 3.0, "c": 9.0}, {"label": "y", "a": 2.0, "b": 3.0, "c": 1.0}]
    paper = [{"label": "P", "a": 5.0, "b": None, "c": "n/a"}]
    assert best_cells(cols, ours) == {"a": "2.00", "b": "3.00"}
    tex = to_latex(cols, [Block("Ours", ours), Block("Paper", paper)], "50% of 100_000", "tab:x")
    assert r"x\_1 & 1.00 & \textbf{3.00} & 9.00 \\" in tex      # ties: both bold, C never
    assert r"y & \textbf{2.00} & \textbf{3.00} & 1.00 \\" in tex
    assert r"P & \textbf{5.00} & -- & n/a \\" in tex              # paper block compared alone
    assert r"\caption{50\% of 100\_000}" in tex


# -- Table 2 -----------------------------------------------------------------------------------
def test_paper_numbers_fix_the_counting_definitions():
    checks = paper_checks()
    assert all(c["ok"] for c in checks), [c for c in checks if not c["ok"]]
    assert any("video-weighted" in c["claim"] and "rejected" in c["claim"] for c in checks)


def _row(did, vid, split, context, responses):
    return {"dialogue_id": did, "video_id": vid, "split": split, "context": context, "responses": responses}


def test_table2_counts_turns_lengths_and_durations(tmp_path):
    tables = {
        "train": [_row("a", "v1", "train", ["你好 呀"], ["好的"]),            # 2 turns, 3 + 2 chars
                  _row("b", "v1", "train", ["一", "二三"], ["四五六"]),       # 3 turns, 1 + 2 + 3
                  _row("c", "v2", "train", ["七"], ["八"])],                   # 2 turns, 1 + 1
        "test": [_row("d", "v3", "test", ["问题"], ["一", "二二", "三三三", "四四四四", "五"])],
    }
    assert dialogue_counts(tables["test"][0]) == (2, 2 + (1 + 2 + 3 + 4 + 1) / 5)
    paths = {}
    for split, rows in tables.items():
        paths[split] = tmp_path / f"{split}.jsonl"
        write_jsonl(paths[split], rows)
    status = tmp_path / "s00000.status.tsv"
    write_status(status, [status_row("v1", "", duration=10.0), status_row("v2", "", duration=4.0),
                          status_row("v3", "fetch: 404")])          # no duration known
    out = {k: tmp_path / f"t2.{k}" for k in ("csv", "md", "tex")}
    ours = build_table2(paths, [status], out["csv"], out["md"], out["tex"], data_source="demo")
    by = {r["split"]: r for r in ours}
    assert (by["Train"]["videos"], by["Train"]["dialogues"], by["Train"]["turns"]) == (2, 3, 7)
    assert by["Train"]["avg_t"] == pytest.approx(7 / 3)
    assert by["Train"]["avg_l"] == pytest.approx((5 + 6 + 2) / 7)
    assert by["Train"]["avg_v"] == pytest.approx((10 + 10 + 4) / 3)     # per dialogue
    assert by["Train"]["avg_v_per_video"] == pytest.approx(7.0)
    assert by["Test"]["avg_v"] is None and by["Test"]["videos_without_duration"] == 1
    assert (by["Total"]["videos"], by["Total"]["dialogues"], by["Total"]["turns"]) == (3, 4, 9)
    assert by["Total"]["avg_l"] == pytest.approx((13 + 2 + 11 / 5) / 9)
    md = out["md"].read_text(encoding="utf-8")
    assert "embedded demo data (not TikTalk)" in md and "| Total | 38,703 | 367,670 | 826,752" in md
    assert "1 video(s) without a known duration" in md and "| NO |" not in md
    assert "TikTalk test set" not in out["tex"].read_text(encoding="utf-8")
    csv_lines = out["csv"].read_text(encoding="utf-8").splitlines()
    assert csv_lines[0].startswith("source,split,videos,dialogues,turns,avg_v,avg_t,avg_l")
    assert len(csv_lines) == 1 + 3 + 4    # ours: train, test, total; paper: 4 rows


# -- Table 7 -----------------------------------------------------------------------------------
def _maria(v, a, k, family="maria"):
    return {"family": family, "params": {"model": {"use_visual": v, "use_audio": a, "use_knowledge": k}}}


def test_rows_follow_the_modalities_first_baseline_wins():
    cfg = {"text": _maria(False, False, False), "maria": _maria(True, False, False),
           "maria2": _maria(True, False, False), "m5": _maria(True, True, True),
           "audio_text": _maria(False, True, False), "gpt": _maria(False, False, False, "dialogpt")}
    assert row_of(cfg["audio_text"]) is None and row_of(cfg["gpt"]) is None
    assert rows_of(cfg) == {"M1": "text", "M2": "maria", "M5": "m5"}


def _write_log(path: Path, records: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def test_epoch_times_skip_the_epoch_a_restart_cut(tmp_path):
    setup = {"samples": 100, "batch_size": 4, "world_size": 1, "device": "cpu", "device_name": "CPU",
             "threads": 1, "grad_accum_steps": 1}
    recs = [{"epoch": 0, "seconds": 5.0, "val_loss": None},               # a step record
            {"epoch": 0, "seconds": 60.0, **setup, "started": 1.0},
            {"epoch": 1, "seconds": 130.0, **setup, "started": 1.0},
            {"epoch": 2, "seconds": 20.0, **setup, "started": 2.0},       # resumed: left out
            {"epoch": 3, "seconds": 95.0, **setup, "started": 2.0}]
    _write_log(tmp_path / "log.jsonl", recs)
    times, got = epoch_times(tmp_path / "log.jsonl")
    assert times == [60.0, 70.0, 75.0] and got["samples"] == 100


class _Toy(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.lin = nn.Linear(width, 1)

    def forward(self, batch):
        return ((self.lin(batch) - 1.0) ** 2).mean()


def test_table7_from_real_train_logs(tmp_path):
    from tiktalk.training.trainer import TrainConfig, train

    logs = {}
    for name, width in (("text", 4), ("maria", 64)):
        out = tmp_path / name
        data = [torch.randn(width) for _ in range(32)]
        train(_Toy(width), data, torch.stack, TrainConfig(epochs=3, batch_size=8, seed=0), out)
        logs[name] = out / "train_log.jsonl"
    times, setup = epoch_times(logs["text"])
    assert len(times) == 3 and all(t >= 0 for t in times)
    assert setup["samples"] == 32 and setup["batch_size"] == 8 and setup["device"] == "cpu"
    rows = table7_rows(logs, {"M1": "text", "M2": "maria"}, {"text": "text", "maria": "Maria"})
    by = {r["row"]: r for r in rows}
    assert by["M1"]["minutes"] == pytest.approx(sum(times) / 3 / 60)
    assert by["M2"]["increase_pct"] == pytest.approx(100 * (by["M2"]["minutes"] / by["M1"]["minutes"] - 1))
    assert by["M3"]["minutes"] is None and by["M3"]["baseline"] == ""
    assert by["M2"]["device"].startswith("CPU, ")
    out = {k: tmp_path / f"t7.{k}" for k in ("csv", "md", "tex", "png")}
    build_table7(logs, {"M1": "text", "M2": "maria"}, {"text": "text", "maria": "Maria"},
                 out["csv"], out["md"], out["tex"], out["png"], data_source="demo")
    md = out["md"].read_text(encoding="utf-8")
    assert "| M3: T+I+A | no run |" in md and "vs. M1, +75%" in md and "32 training examples" in md
    assert out["png"].stat().st_size > 0
