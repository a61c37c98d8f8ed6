"""Script logging helpers: progress lines at a bounded rate, durations, failure records."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import pytest

from tiktalk.logs import (
    failure_record_path,
    format_duration,
    progress,
    read_failure_records,
    script_logging,
)


class FakeClock:
    """A clock the test advances by hand: one tick per item."""

    def __init__(self, step: float):
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        return self.now

    def tick(self) -> None:
        self.now += self.step


def _run(items, clock, caplog, **kw):
    with caplog.at_level(logging.INFO, logger="tiktalk.progress"):
        for _ in progress(items, clock=clock, **kw):
            clock.tick()
    return [r.getMessage() for r in caplog.records if r.name == "tiktalk.progress"]


def test_progress_lines_count_rate_and_eta_at_a_bounded_rate(caplog):
    # 480 items at 0.25 s each (4 it/s), a line at most every 30 s: after 120, 240, 360 items
    lines = _run(range(480), FakeClock(0.25), caplog, desc="decode test", every_s=30)
    assert lines == [
        "decode test: 120/480 (25%), 4 it/s, ETA 1m30s",
        "decode test: 240/480 (50%), 4 it/s, ETA 1m00s",
        "decode test: 360/480 (75%), 4 it/s, ETA 30s",
        "decode test: 480/480 (100%) in 2m00s, 4 it/s",
    ]


def test_progress_without_total_and_fast_loops(caplog):
    lines = _run(iter(range(7)), FakeClock(2.0), caplog, desc="x", every_s=5)
    assert lines == ["x: 3, 0.5 it/s", "x: 6, 0.5 it/s", "x: 7 in 14s, 0.5 it/s"]
    caplog.clear()
    # a fast loop logs its last line only
    assert _run([1, 2, 3], FakeClock(0.001), caplog, desc="y") == ["y: 3/3 (100%) in 0s, 1000 it/s"]


def test_format_duration():
    assert [format_duration(s) for s in (0, 42.4, 59.6, 116, 3600, 7380, None, -1)] == [
        "0s", "42s", "1m00s", "1m56s", "1h00m", "2h03m", "?", "?"]


def _job(rule="predict", **wildcards):
    return SimpleNamespace(rule=rule, wildcards=wildcards)


def test_failure_record_path_mirrors_the_log():
    assert str(failure_record_path("results/logs/predict/maria_test.log")) == "results/failures/predict/maria_test.json"
    assert str(failure_record_path("results/logs/table3.log")) == "results/failures/table3.json"
    assert str(failure_record_path("/tmp/x/run.log")) == "/tmp/x/run.log.failure.json"


def test_failed_job_leaves_a_one_line_record_and_success_removes_it(tmp_path):
    log = tmp_path / "results" / "logs" / "predict" / "maria_test.log"
    record = tmp_path / "results" / "failures" / "predict" / "maria_test.json"
    job = _job(baseline="maria", split="test")
    with pytest.raises(RuntimeError):
        with script_logging(log, job=job):
            raise RuntimeError("CUDA out of memory.\nTried to allocate 2.00 GiB")
    rec = json.loads(record.read_text())
    assert rec["status"] == "failed" and rec["rule"] == "predict"
    assert rec["wildcards"] == {"baseline": "maria", "split": "test"}
    assert rec["reason"] == "RuntimeError: CUDA out of memory."
    assert rec["log"] == str(log) and "Tried to allocate" in log.read_text()  # traceback in the log
    assert [r["path"] for r in read_failure_records(tmp_path / "results" / "failures")] == [str(record)]
    # while a job runs its record says so (a job killed without an exception leaves this)
    with script_logging(log, job=job):
        assert json.loads(record.read_text())["status"] == "running"
    assert not record.exists() and read_failure_records(tmp_path / "results" / "failures") == []


def test_no_record_without_the_job_and_unreadable_records_are_named(tmp_path):
    log = tmp_path / "logs" / "score" / "x.log"
    with pytest.raises(ValueError):
        with script_logging(log):
            raise ValueError("bad")
    assert not (tmp_path / "failures").exists()
    (tmp_path / "failures").mkdir()
    (tmp_path / "failures" / "bad.json").write_text("{not json")
    (rec,) = read_failure_records(tmp_path / "failures")
    assert rec["status"] == "unreadable" and "bad.json" in rec["reason"]
    assert read_failure_records(tmp_path / "nowhere") == []


def test_exit_status_reason(tmp_path):
    log = tmp_path / "logs" / "train_baseline" / "m.log"
    with pytest.raises(SystemExit):
        with script_logging(log, job=_job("train_baseline", baseline="m")):
            raise SystemExit(143)
    rec = json.loads((tmp_path / "failures" / "train_baseline" / "m.json").read_text())
    assert rec["reason"] == "SystemExit: exit status 143"
