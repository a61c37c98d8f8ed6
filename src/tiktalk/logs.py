"""Logging for workflow scripts: everything goes to the rule's log file and to stderr.

* :func:`script_logging`: one rule's logging (its log file and stderr), thread limits and, when
  given the job, its failure record;
* :func:`progress`: a loop's progress as log lines at a bounded rate (``desc: 120/480 (25%),
  3.1 it/s, ETA 1m56s``), for loops whose progress must reach the rule's log file;
  :func:`batch_starts` for a loop over batches, counted in items;
* failure records (``results/failures/<rule>/<name>.json``, beside ``results/logs/<rule>/<name>.log``):
  a job started with ``job=`` writes ``{"status": "running", ...}`` when it starts, turns it into
  ``{"status": "failed", "reason": <one line>, ...}`` when it raises, and deletes it when it
  succeeds. So after a run, a record is left exactly for the jobs whose last attempt failed
  ("failed") or was killed without a Python exception ("running": out of memory, a scheduler's
  time limit). Table 3 reads them to say why a baseline's row is missing.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def limit_cpu_threads(threads: int | None) -> None:
    """Hold a job to its Snakemake ``threads`` (torch / OpenMP / BLAS thread pools).

    Snakemake exports OMP_NUM_THREADS only to ``shell:`` jobs; a ``script:`` job's torch would
    otherwise start one thread per core, and two such jobs on a 2-core machine oversubscribe it
    (several times slower in total than one thread each).
    """
    if not threads or threads < 1:
        return
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(threads))


@contextlib.contextmanager
def script_logging(log_path: str | Path | None, threads: int | None = None,
                   job: Any = None) -> Iterator[logging.Logger]:
    """Configure root logging for one rule (a failure's traceback lands in the log too) and,
    when ``threads`` is given, hold the job to that many CPU threads.

    ``job``: the script's ``snakemake`` object (anything with ``rule`` and ``wildcards``); with
    it and a log path, the job keeps a failure record (module docstring) beside its log.
    """
    limit_cpu_threads(threads)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w", encoding="utf-8"))
    logging.basicConfig(level=logging.INFO, format=FORMAT, handlers=handlers, force=True)
    log = logging.getLogger("tiktalk")
    record = failure_record_path(log_path) if (job is not None and log_path) else None
    if record is not None:
        write_failure_record(record, job, log_path, status="running")
    try:
        yield log
    except BaseException as exc:
        log.error("failed:\n%s", traceback.format_exc())
        if record is not None:
            write_failure_record(record, job, log_path, status="failed", reason=one_line_reason(exc))
        raise
    else:
        if record is not None:
            record.unlink(missing_ok=True)
        own, child = peak_rss_mb()
        # the kernel's high-water marks (Snakemake's max_rss samples every 30 s after the
        # first 15 s and can miss a short peak): the scale rehearsal reads this line
        log.info("%s self %.1f MB, largest child %.1f MB", PEAK_RSS_PREFIX, own, child)
    finally:
        for h in handlers:
            h.flush()


PEAK_RSS_PREFIX = "peak RSS:"


def peak_rss_mb() -> tuple[float, float]:
    """(this process's peak resident memory, the largest peak of its finished child processes
    (a DDP rank, a decoder worker)), in MB, from the kernel (``getrusage``)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0      # KB on Linux
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    return own, child


# ---------------------------------------------------------------------------- progress


def format_duration(seconds: float | None) -> str:
    """``42s``, ``1m56s``, ``2h03m``; ``?`` when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def progress(iterable: Iterable[T], total: int | None = None, desc: str = "progress",
             every_s: float = 30.0, logger: logging.Logger | None = None,
             clock: Callable[[], float] = time.monotonic,
             size: Callable[[T], int] | None = None) -> Iterator[T]:
    """Yield from ``iterable``, logging ``desc: 120/480 (25%), 3.1 it/s, ETA 1m56s`` at most
    once per ``every_s`` seconds, and a last line ``desc: 480/480 (100%) in 2m35s, 3.1 it/s``
    when it is exhausted. ``total`` defaults to ``len(iterable)`` when it has one (without a
    total the lines give the count and rate only). Logs through ``logger`` (default
    ``tiktalk.progress``), so the lines reach the rule's log file (:func:`script_logging`).
    ``size``: how many units one item counts for (``len`` for a loop over batches, so that
    ``total``, the counts and the rate are in dialogues or videos, not batches); default 1.
    """
    log = logger or logging.getLogger("tiktalk.progress")
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    start = last = clock()
    done = 0
    for item in iterable:
        yield item
        done += 1 if size is None else size(item)
        now = clock()
        if now - last >= every_s and done != total:  # the last item gets the final line
            last = now
            log.info("%s", _progress_line(desc, done, total, now - start))
    log.info("%s", _progress_line(desc, done, total, clock() - start, finished=True))


def batch_starts(n: int, size: int, desc: str, logged: bool = True) -> Iterable[int]:
    """``range(0, n, size)`` for a loop over batches of ``n`` items (dialogues, candidate
    responses, contexts); when ``logged``, its progress goes to the log (:func:`progress`),
    counted in items: ``maria predict test: 96/480 (20%), 3.1 it/s, ETA 2m03s``."""
    starts = range(0, n, size)
    if not logged:
        return starts
    return progress(starts, total=n, desc=desc, size=lambda start: min(size, n - start))


def _progress_line(desc: str, done: int, total: int | None, elapsed: float,
                   finished: bool = False) -> str:
    rate = done / elapsed if elapsed > 0 else None
    count = f"{done}/{total} ({100 * done / total:.0f}%)" if total else f"{done}"
    speed = "? it/s" if rate is None else f"{rate:.0f} it/s" if rate >= 100 else f"{rate:.3g} it/s"
    if finished:
        return f"{desc}: {count} in {format_duration(elapsed)}, {speed}"
    eta = (total - done) / rate if (total and rate) else None
    tail = f", ETA {format_duration(eta)}" if total else ""
    return f"{desc}: {count}, {speed}{tail}"


# ---------------------------------------------------------------------------- failure records


FAILURES_DIR = "failures"


def failure_record_path(log_path: str | Path) -> Path:
    """Where a job's failure record lives: its log path with the ``logs`` directory replaced by
    ``failures`` and ``.json`` as suffix (``results/logs/predict/maria_test.log`` ->
    ``results/failures/predict/maria_test.json``); beside the log when no part is ``logs``."""
    path = Path(log_path)
    parts = list(path.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "logs":
            parts[i] = FAILURES_DIR
            return Path(*parts).with_suffix(".json")
    return path.with_name(path.name + ".failure.json")


def one_line_reason(exc: BaseException, limit: int = 300) -> str:
    """``Type: first line of the message`` (at most ``limit`` characters)."""
    if isinstance(exc, SystemExit) and not str(exc).strip("0123456789- "):
        text = f"exit status {exc.code}"
    else:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    line = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


def write_failure_record(path: str | Path, job: Any, log_path: str | Path, status: str,
                         reason: str = "") -> None:
    """Write one failure record atomically (see the module docstring for the states)."""
    wildcards = getattr(job, "wildcards", None) or {}
    record = {
        "rule": str(getattr(job, "rule", "")),
        "wildcards": {str(k): str(v) for k, v in dict(wildcards.items()).items()},
        "status": status,
        "reason": reason,
        "log": str(log_path),
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_failure_records(directory: str | Path) -> list[dict]:
    """Every failure record under ``directory`` (``[]`` when there is none); a record that
    cannot be read is reported as such, naming its file."""
    root = Path(directory)
    records = []
    for path in sorted(root.rglob("*.json")) if root.is_dir() else []:
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(rec, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as exc:
            rec = {"rule": path.parent.name, "wildcards": {}, "status": "unreadable",
                   "reason": f"unreadable failure record {path}: {exc}", "log": ""}
        rec["path"] = str(path)
        records.append(rec)
    return records
