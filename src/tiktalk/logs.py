"""Logging for workflow scripts: everything goes to the rule's log file and to stderr."""

from __future__ import annotations

import contextlib
import logging
import sys
import traceback
from pathlib import Path
from typing import Iterator

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def script_logging(log_path: str | Path | None) -> Iterator[logging.Logger]:
    """Configure root logging for one rule; a failure's traceback lands in the log too."""
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
