"""Logging for workflow scripts: everything goes to the rule's log file and to stderr."""

from __future__ import annotations

import contextlib
import logging
import sys
import traceback
from pathlib import Path
from typing import Iterator

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def limit_cpu_threads(threads: int | None) -> None:
    """Hold a job to its Snakemake ``threads`` (torch / OpenMP / BLAS thread pools).

    Snakemake exports OMP_NUM_THREADS only to ``shell:`` jobs; a ``script:`` job's torch would
    otherwise start one thread per core, and two such jobs on a 2-core machine oversubscribe it
    (several times slower in total than one thread each).
    """
    if not threads or threads < 1:
        return
    import os

    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(threads))


@contextlib.contextmanager
def script_logging(log_path: str | Path | None, threads: int | None = None) -> Iterator[logging.Logger]:
    """Configure root logging for one rule (a failure's traceback lands in the log too) and,
    when ``threads`` is given, hold the job to that many CPU threads."""
    limit_cpu_threads(threads)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w", encoding="utf-8"))
    logging.basicConfig(level=logging.INFO, format=FORMAT, handlers=handlers, force=True)
    log = logging.getLogger("tiktalk")
    try:
        yield log
    except BaseException:
        log.error("failed:\n%s", traceback.format_exc())
        raise
    finally:
        for h in handlers:
            h.flush()
