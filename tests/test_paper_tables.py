"""Tables 2 and 7 and the shared table rendering: counts on small real inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from tiktalk.io import write_jsonl
from tiktalk.media.tables import status_row, write_status
from tiktalk.report.data_division import build_table2, dialogue_counts, paper_checks
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


# -- Table 5 -----------------------------------------------------------------------------------
def test_demo_descriptions_recover_every_topic(tmp_path):
    from tiktalk.demo.generate import generate_demo
    from tiktalk.demo.topics import TOPICS
    from tiktalk.report.paper_settings import PAPER_TOPICS
    from tiktalk.report.topics import PAPER_TABLE5, assign_topics, release_descriptions, table5_rows

    assert list(TOPICS) == [zh for zh, _ in PAPER_TOPICS]          # the demo uses the table's names
    assert [TOPICS[zh][0] for zh, _ in PAPER_TOPICS] == list(PAPER_TABLE5.values())
    assert sum(PAPER_TABLE5.values()) == 38703                       # = Table 2's total videos
    generate_demo(tmp_path, seed=5, n_videos={"train": 30, "val": 4, "test": 10}, write_videos=False)
    attrs = json.loads((tmp_path / "video_attributes.json").read_text(encoding="utf-8"))
    desc = release_descriptions([tmp_path / "release" / f"{s}.json" for s in ("train", "val", "test")])
    assert set(desc) == set(attrs)
    names = [zh for zh, _ in PAPER_TOPICS]
    topics = assign_topics(desc, list(attrs) + ["no_description"], names, "其他", {"kind": "char_tfidf"})
    assert all(topics[v] == a["topic"] for v, a in attrs.items())
    assert topics["no_description"] == "其他"
    # a threshold above every similarity sends everything to Others
    assert set(assign_topics(desc, attrs, names, "其他", {"kind": "char_tfidf"}, 2.0).values()) == {"其他"}
    rows = table5_rows(topics, PAPER_TOPICS)
    assert sum(r["videos"] for r in rows) == len(attrs) + 1
    assert sum(r["share"] for r in rows) == pytest.approx(100.0)


# -- Table 6 -----------------------------------------------------------------------------------
def test_buckets_of_frame_times():
    from tiktalk.report.interest import bucket_names, bucket_of, table6_rows

    assert [bucket_of(t, 10.0) for t in (0.0, 1.99, 2.0, 5.0, 9.99, 10.0, 12.0)] == [0, 0, 1, 2, 4, 4, 4]
    assert bucket_names(5) == ["0~20", "20~40", "40~60", "60~80", "80~100"]
    with pytest.raises(ValueError):
        bucket_of(1.0, 0.0)
    rows = table6_rows([{"bucket": b} for b in (0, 0, 3, 4)], 5)
    assert [r["responses"] for r in rows] == [2, 0, 0, 1, 1] and rows[0]["share"] == 50.0
    assert sum(r["paper_responses"] for r in rows) == 1046


def test_relevant_responses_from_the_figure2_sheets(tmp_path):
    from annotation_sim import fill_sheets
    from kit_fixtures import write_split

    from tiktalk.report.kit.context_sources import make_sheets
    from tiktalk.report.interest import relevant_from_annotations

    write_split(tmp_path / "test.jsonl", n_videos=4)
    key = make_sheets(tmp_path / "test.jsonl", split="test", n_videos=2, annotators=3, seed=1,
                      sheets_dir=tmp_path / "sheets", key_path=tmp_path / "key.json")

    def rate(annotator, item, system, field):
        if field == "skip":
            return 0
        if field != "vision":
            return 0
        yes = {"ref1": {"a1", "a2"}, "ref2": {"a1"}}.get(system, set())   # majority only for ref1
        return int(annotator in yes)

    annotators = key["annotators"]
    assert len(annotators) == 3
    renamed = {a: n for a, n in zip(annotators, ("a1", "a2", "a3"))}
    fill_sheets(tmp_path / "sheets", tmp_path / "key.json", tmp_path / "filled",
                lambda a, i, s, f: rate(renamed[a], i, s, f))
    got = relevant_from_annotations(tmp_path / "key.json", tmp_path / "filled")
    want = [{"dialogue_id": it["dialogue_id"], "video_id": it["video_id"], "response": it["candidates"]["ref1"]}
            for it in key["items"]]
    assert got == want


def _video(tmp_path, focus, colour="红", duration=5.0):
    from tiktalk.demo.media import VideoSpec, write_demo_video

    spec = VideoSpec(video_id=f"v{focus}", colour=colour, shape="圆形", pitch=None, duration=duration,
                     background=80, radius=10, x0=0.3, y0=0.6, vx=2.0, vy=-1.5, focus=focus)
    path = tmp_path / f"v{focus}.mp4"
    write_demo_video(path, spec, 96, 8, 16000)
    return path


class _AreaScorer:
    """A stand-in for Chinese-CLIP: a frame's similarity to any text is its share of red pixels."""

    image_size = 32

    def encode_images(self, frames):
        red = (frames[..., 0] > 150) & (frames[..., 1] < 100)
        return red.reshape(len(frames), -1).mean(1, keepdims=True)

    def encode_texts(self, texts):
        return np.ones((len(texts), 1))


def test_most_similar_frame_lies_in_the_focus_segment_of_a_demo_video(tmp_path):
    from tiktalk.report.interest import build_table6, focus_agreement, match_frames

    files = {f"v{f}": str(_video(tmp_path, f)) for f in (1, 3)}
    responses = [{"dialogue_id": f"d{f}", "video_id": f"v{f}", "response": "一个红色的圆形"} for f in (1, 3)]
    responses.append({"dialogue_id": "dx", "video_id": "missing", "response": "x"})
    matches, skipped = match_frames(responses, files, _AreaScorer(), max_frames=50)
    assert skipped == {"missing": "no fetched video file"}
    assert [m["bucket"] for m in matches] == [1, 3]
    assert all(m["n_frames"] == 40 and m["duration"] == pytest.approx(5.0, abs=0.2) for m in matches)
    attrs = {"v1": {"focus": 1}, "v3": {"focus": 3}}
    assert focus_agreement(matches, attrs) == {"n": 2, "hits": 2, "percent": 100.0}
    out = {k: tmp_path / f"t6.{k}" for k in ("csv", "md", "tex", "png")}
    build_table6(matches, skipped, out["csv"], out["md"], out["tex"], out["png"], tmp_path / "m.jsonl",
                 buckets=5, split="test", data_source="demo", model="area", relevant="item_types",
                 attributes=attrs)
    md = out["md"].read_text(encoding="utf-8")
    assert "for 2 of 2 responses (100.0%" in md and "| 20~40% | 1 | 50.0 | 172 |" in md
    assert "1 video(s) left out" in md


def test_tiny_clip_round_trip_through_the_scorer(tmp_path):
    from tiktalk.media.clip import ClipScorer, decode_clip_frames, fit_tiny_clip

    frames, _, _ = decode_clip_frames(_video(tmp_path, 2), 32, 10)
    assert frames.shape == (10, 32, 32, 3) and frames.dtype == np.uint8
    info = fit_tiny_clip([frames, frames[::-1]], ["红色圆形", "蓝色方形"], tmp_path / "clip",
                         {"steps": 3, "batch_size": 4}, positives=[np.arange(10) < 5, np.arange(10) >= 5])
    assert info["steps"] == 3 and info["positives"] == 10 and info["negatives"] == 10
    scorer = ClipScorer(tmp_path / "clip", device="cpu")
    img, txt = scorer.encode_images(frames), scorer.encode_texts(["红色圆形", "没见过的字"])
    assert img.shape == (10, 32) and txt.shape == (2, 32)
    assert np.allclose(np.linalg.norm(img, axis=1), 1.0, atol=1e-5)


# -- Figure 4 ----------------------------------------------------------------------------------
def test_cases_page_shows_frames_context_references_and_every_response(tmp_path):
    from kit_fixtures import SYSTEMS, write_predictions, write_split

    from tiktalk.report.cases import build_cases, choose_cases

    rows = write_split(tmp_path / "test.jsonl", n_videos=5)
    preds = write_predictions(tmp_path / "pred", rows)
    assert choose_cases(rows, 3, 1) == choose_cases(rows, 3, 1) != choose_cases(rows, 3, 2)
    files = {rows[0]["video_id"]: str(_video(tmp_path, 0))}
    named = [rows[0]["dialogue_id"], rows[3]["dialogue_id"]]
    shown = build_cases(tmp_path / "test.jsonl", preds, {SYSTEMS[0]: "Maria+C3KG"}, files,
                        tmp_path / "f4.html", split="test", data_source="demo", n=2, seed=0,
                        named=named, frames=3)
    assert shown == named
    page = (tmp_path / "f4.html").read_text(encoding="utf-8")
    assert page.count("data:image/jpeg;base64,") == 3              # one video found, 3 frames
    assert "no fetched video file" in page                          # the other one says why
    assert "Maria+C3KG" in page and SYSTEMS[1] in page              # labels where given
    assert "&lt;/script&gt;" in page and "</script><b>" not in page # responses escaped
    assert "embedded demo data (not TikTalk)" in page
    with pytest.raises(KeyError, match="nope"):
        choose_cases(rows, 1, 0, ["nope"])
