"""Progress of the long loops reaches the job's log file (issue 12, "prediction logs its progress
to the log file"): prediction and ranking of every family, the media fetch and extraction, and
knowledge retrieval all log through :func:`tiktalk.logs.progress`, counted in items."""

from __future__ import annotations

import logging
import re
import runpy
from pathlib import Path

import pytest
import torch

from test_knowledge import tiny_sbert  # noqa: F401  (a fixture: the tiny Sentence-BERT model)
from tiktalk.logs import batch_starts, progress

ROOT = Path(__file__).resolve().parents[1]
torch.set_num_threads(1)


class FakeClock:
    def __init__(self, step: float):
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        return self.now


def _messages(caplog, name: str = "tiktalk.progress") -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == name]


def test_batches_count_their_items(caplog):
    # 4 batches of 5 items, 1 s each: 5 items/s, a line each second, the total in items
    clock = FakeClock(1.0)
    with caplog.at_level(logging.INFO, logger="tiktalk.progress"):
        for _ in progress([[0] * 5] * 4, total=20, size=len, desc="decode", every_s=1, clock=clock):
            clock.now += clock.step
    assert _messages(caplog) == [
        "decode: 5/20 (25%), 5 it/s, ETA 3s",
        "decode: 10/20 (50%), 5 it/s, ETA 2s",
        "decode: 15/20 (75%), 5 it/s, ETA 1s",
        "decode: 20/20 (100%) in 4s, 5 it/s",
    ]


def test_batch_starts_logged_or_not(caplog):
    with caplog.at_level(logging.INFO, logger="tiktalk.progress"):
        assert list(batch_starts(10, 4, "quiet", logged=False)) == [0, 4, 8]
        assert _messages(caplog) == []
        assert list(batch_starts(10, 4, "rows")) == [0, 4, 8]
    (line,) = _messages(caplog)
    assert line.startswith("rows: 10/10 (100%) in ")          # items, not the 3 batches


class Named(dict):
    """What a Snakemake script sees as ``snakemake.input`` / ``.params`` / ``.wildcards``."""

    __getattr__ = dict.__getitem__


def _run_script(script: str, *, inputs: dict, params: dict, wildcards: dict, output: Path,
                log: Path, rule: str) -> None:
    job = Named(input=Named(inputs), params=Named(params), wildcards=Named(wildcards),
                output=[str(output)], log=[str(log)], threads=1, rule=rule)
    runpy.run_path(str(ROOT / "workflow" / "scripts" / script), init_globals={"snakemake": job})


def test_predict_and_rank_jobs_log_their_progress_to_the_log_file(tmp_path):
    """The real predict/rank scripts on a tiny trained DialoGPT: their log files hold the
    loop's progress in dialogues (predict) and candidate responses (rank)."""
    from test_baselines_text import TRAIN, make_dataset

    from tiktalk.baselines import dialogpt
    from tiktalk.io import read_jsonl
    from tiktalk.metrics.ranking import write_candidates

    data = make_dataset(tmp_path, n_test=5)
    model = {"n_layer": 1, "n_embd": 16, "n_head": 2, "n_positions": 64, "max_input_len": 64,
             "max_new_tokens": 4}
    baseline = {"family": "dialogpt", "params": {"train": dict(TRAIN, epochs=1),
                                                 "predict_batch_size": 2, "model": model}}
    dialogpt.train(baseline["params"], data, tmp_path / "model")
    inputs = {"model": str(tmp_path / "model" / "model.pt"),
              "dialogues": [str(p) for p in data.dialogues.values()],
              "tokenizer": str(Path(data.tokenizer) / "vocab.txt")}
    params = {"baseline": baseline, "tokenizer": {"kind": "train"}, "seed": 7, "llm_dir": None}
    wildcards = {"baseline": "gpt", "split": "test"}

    log = tmp_path / "logs" / "predict" / "gpt_test.log"
    _run_script("predict.py", inputs=inputs, params=params, wildcards=wildcards,
                output=tmp_path / "pred.jsonl", log=log, rule="predict")
    assert len(read_jsonl(tmp_path / "pred.jsonl")) == 5
    text = log.read_text(encoding="utf-8")
    assert "tiktalk.progress: dialogpt predict test: 5/5 (100%) in " in text, text

    rows = read_jsonl(data.dialogues["test"])
    sets = [{"dialogue_id": r["dialogue_id"], "candidates": ["是红色的", "是蓝色的", "你好啊"],
             "references": [0]} for r in rows]
    write_candidates(tmp_path / "cands.json", sets, "test", 0, 3)
    log = tmp_path / "logs" / "rank" / "gpt_test.log"
    _run_script("rank.py", inputs={**inputs, "candidates": str(tmp_path / "cands.json")},
                params={**params, "score": "mean", "batch_size": 4}, wildcards=wildcards,
                output=tmp_path / "rank.json", log=log, rule="rank")
    text = log.read_text(encoding="utf-8")
    assert "tiktalk.progress: dialogpt rank test candidates: 15/15 (100%) in " in text, text


def test_fetch_and_extract_log_their_progress_in_videos(tmp_path, caplog):
    from media_utils import write_video

    from tiktalk.media.shard import extract_shard, fetch_shard

    src = tmp_path / "src"
    src.mkdir()
    for vid in ("a", "b", "c"):
        write_video(src / f"{vid}.mp4", duration=1.0)
    small = dict(init="random", backbone="resnet18", frame_size=32, input_size=32, max_frames=2,
                 max_audio_frames=1, batch_size=8, videos_per_batch=2, num_workers=0)
    with caplog.at_level(logging.INFO, logger="tiktalk.progress"):
        fetch_shard(["a", "b", "gone", "c"], {"kind": "local", "root": str(src)}, {},
                    tmp_path / "videos", tmp_path / "s00000.fetch.tsv")
        extract_shard(tmp_path / "s00000.fetch.tsv", small, tmp_path / "s00000.features.npz",
                      tmp_path / "s00000.status.tsv", device="cpu")
    fetch_line, extract_line = _messages(caplog)
    assert fetch_line.startswith(f"fetch {tmp_path / 's00000.fetch.tsv'}: 4/4 (100%) in ")
    # the three fetched videos in two batches, counted in videos; the missing one never decoded
    assert extract_line.startswith(f"extract {tmp_path / 's00000.features.npz'}: 3/3 (100%) in ")


def test_retrieval_logs_its_progress(tmp_path, caplog):
    from test_knowledge import _dialogues, write_table

    from tiktalk.knowledge.retrieve import retrieve_split

    _dialogues(tmp_path / "test.jsonl")
    with caplog.at_level(logging.INFO, logger="tiktalk.progress"):
        retrieve_split(tmp_path / "test.jsonl", write_table(tmp_path / "c3kg.tsv"),
                       tmp_path / "k.jsonl", {"kind": "char_tfidf"})
    (line,) = _messages(caplog)
    assert line.startswith("retrieve (CharTfidfRetriever): 3/3 (100%) in ")


def test_sentence_bert_heads_encoded_in_logged_chunks_equal_one_call(tiny_sbert, caplog):
    """Many heads are encoded in chunks (their progress logged); the embeddings are those of
    one call over all heads."""
    from test_knowledge import EDGES

    from tiktalk.knowledge.retrieve import SentenceBertRetriever

    chars = sorted({ch for h, _, t, _ in EDGES for ch in h + t})
    heads = [a + b for a in chars[:7] for b in chars[:7]]           # 49 heads > 16 batches of 2
    retriever = SentenceBertRetriever(str(tiny_sbert), batch_size=2, device="cpu", top_k=1)
    with caplog.at_level(logging.INFO, logger="tiktalk.progress"):
        chunked = retriever._encode_heads(heads)
    assert _messages(caplog)[-1].startswith(f"encode C3KG flow heads: {len(heads)}/{len(heads)} (100%)")
    whole = retriever._encode(heads)
    assert chunked.shape == whole.shape == (len(heads), 32)
    assert torch.allclose(chunked, whole, atol=1e-5)


# ----------------------------------------------------------------------------- where logs are

_RULE = re.compile(r"^(?:rule|checkpoint) (\w+):\n(.*?)(?=^\S|\Z)", re.M | re.S)


def _directive(body: str, name: str) -> str | None:
    m = re.search(rf"^\s+{name}:\s*\n\s+f\"(.+?)\",?$", body, re.M)
    return m.group(1) if m else None


def test_every_job_logs_and_benchmarks_where_the_readme_says():
    """docs/operations.md "Logs, progress and failures": each job's log is results/logs/<rule>/<job>.log
    (<rule>.log for a one-job rule), its benchmark results/benchmarks/<rule>/<job>.tsv, and a
    training's records results/models/<baseline>/train_log.jsonl."""
    from tiktalk.training.trainer import LOG_NAME

    rules = {}
    for path in sorted((ROOT / "rules").glob("*.smk")):
        for m in _RULE.finditer(path.read_text(encoding="utf-8")):
            rules[m.group(1)] = m.group(2)
    assert {"train_baseline", "predict", "score", "extract_shard", "table3"} <= set(rules)
    for rule, body in rules.items():
        log, bench = _directive(body, "log"), _directive(body, "benchmark")
        assert log and (log == f"{{R}}/logs/{rule}.log" or log.startswith(f"{{R}}/logs/{rule}/")), (rule, log)
        assert log.endswith(".log"), (rule, log)
        assert bench and (bench == f"{{R}}/benchmarks/{rule}.tsv"
                          or bench.startswith(f"{{R}}/benchmarks/{rule}/")), (rule, bench)
        assert bench.endswith(".tsv"), (rule, bench)
    train = rules["train_baseline"]
    assert re.search(r'model=f"\{R\}/models/\{\{baseline\}\}/model.pt"', train)
    readme = (ROOT / "docs/operations.md").read_text(encoding="utf-8")
    for claim in ("results/logs/<rule>/<job>.log", "results/logs/<rule>.log",
                  "results/benchmarks/<rule>/<job>.tsv", f"results/models/<baseline>/{LOG_NAME}"):
        assert claim in readme, claim
