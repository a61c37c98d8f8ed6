"""Small I/O helpers shared by every stage: atomic writes, JSON lines, seeds."""

from __future__ import annotations

import contextlib
import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    Readers never see a half-written file: either the old file (or none) or the new one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, ensure_ascii=False, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict]) -> int:
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def _jsonl_rows(path: str | os.PathLike):
    """(line number, its JSON object or None, the problem or None) of each non-blank line."""
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield lineno, None, f"not valid JSON ({exc.msg})"
                continue
            if not isinstance(row, dict):
                yield lineno, None, f"expected a JSON object, got {type(row).__name__}"
                continue
            yield lineno, row, None


def iter_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, dict]]:
    """(line number, object) of each non-blank line of a JSON-lines file, streamed; a bad line
    raises ValueError naming file and line number."""
    for lineno, row, problem in _jsonl_rows(path):
        if problem:
            raise ValueError(f"{path}:{lineno}: {problem}")
        yield lineno, row


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read a JSON-lines file; a bad line raises ValueError naming file and line number."""
    return [row for _, row in iter_jsonl(path)]


def jsonl_problems(path: str | os.PathLike, check_row, limit: int = 5) -> list[str]:
    """``path:line: problem`` for the first ``limit`` bad lines of a JSON-lines file: a missing
    file, a line that is not a JSON object, or one where ``check_row(row, seen)`` returns a
    message (``seen``: a dict the checker may keep state in, e.g. the ids so far)."""
    if not os.path.isfile(path):
        return [f"{path}: no such file"]
    problems: list[str] = []
    seen: dict = {}
    for lineno, row, problem in _jsonl_rows(path):
        problem = problem or check_row(row, seen)
        if problem:
            problems.append(f"{path}:{lineno}: {problem}")
            if len(problems) >= limit:
                break
    if not problems and not seen:
        problems.append(f"{path}: no rows")
    return problems


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (if importable) for deterministic runs."""
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # pragma: no cover
        pass
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:  # pragma: no cover
        pass


def sha256_file(path: str | os.PathLike, chunk_bytes: int = 8 * 2**20) -> str:
    """Hex sha256 of a file, read in chunks."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(chunk_bytes), b""):
            h.update(chunk)
    return h.hexdigest()


def fingerprint(path: str | os.PathLike) -> dict:
    """What a job loaded weights from: ``{"path", "sha256", "files"}``.

    A file: its sha256. A directory (a ``save_pretrained`` checkpoint): the sha256 of the sorted
    lines ``<relative path>\\t<sha256 of the file>`` of every file in it, hidden files and
    directories (``.cache``) left out, so the same files give the same fingerprint anywhere.
    """
    import hashlib

    p = Path(path)
    if p.is_file():
        return {"path": str(p), "sha256": sha256_file(p), "files": 1}
    if not p.is_dir():
        raise FileNotFoundError(f"{p}: no such weights file or directory")
    lines = []
    for f in sorted(p.rglob("*")):
        rel = f.relative_to(p)
        if f.is_file() and not any(part.startswith(".") for part in rel.parts):
            lines.append(f"{rel.as_posix()}\t{sha256_file(f)}\n")
    digest = hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()
    return {"path": str(p), "sha256": digest, "files": len(lines)}


def provenance(paths: Iterable[str | os.PathLike | dict | None], random_init: bool = False) -> dict:
    """The record a job writes beside what it made from pretrained weights:
    ``{"random_init": bool, "weights": [fingerprint, ...]}``, one :func:`fingerprint` per loaded
    file or directory (duplicates and ``None`` left out, order kept; an item that already is a
    fingerprint dict is taken as it is, so a 12 GB directory is hashed once per job).

    ``random_init`` is True when a component that the paper loads pretrained was initialised
    randomly instead (only where the config says so: ``init: random``, Maria's ``init: scratch``,
    a demo model without pretrained weights). A name that is not a local path (a hub id read
    from the local cache) is recorded with ``sha256: None``.
    """
    weights: dict[str, dict] = {}
    for p in paths:
        if isinstance(p, dict):
            weights.setdefault(p["path"], p)
        elif p and str(p) not in weights:
            local = Path(p).exists()
            weights[str(p)] = fingerprint(p) if local else {"path": str(p), "sha256": None, "files": 0}
    return {"random_init": bool(random_init), "weights": list(weights.values())}
