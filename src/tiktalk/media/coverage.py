"""The coverage floor: before any training reads features, each split's share of videos with
features must reach ``media.min_coverage`` (default 0.95).

Two small jobs. :func:`write_coverage` (rule ``media_coverage``) counts, per split, the videos
of the manifest whose media status is ``ok`` and writes the report
``results/media/coverage.json`` (format below) with the most frequent failure reasons; it never
fails for a low share. :func:`check_coverage` (rule ``coverage_floor``) compares the report
with the floor and raises :class:`CoverageError` naming the report, the splits below the floor
and the top reasons, so the jobs that read features never start; it writes
``results/media/coverage.ok`` only when every split passes. The trainings take that file as an
``ancient()`` input: they wait for it, but a changed floor re-runs no training.

Report (``coverage.json``, :data:`COVERAGE_VERSION`)::

    {"version": 1,
     "splits": {"train": {"videos": int, "ok": int, "failed": int, "coverage": float|null}, ...},
     "top_failure_reasons": [{"reason": str, "videos": int, "examples": [video_id, ...]}, ...]}

A reason's numbers are replaced by ``N`` (:func:`reason_kind`) so that one kind of failure
counts once; ``examples`` holds up to three video ids.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from typing import Sequence

from tiktalk.data.manifest import read_manifest
from tiktalk.formats import SPLITS
from tiktalk.io import read_json, write_json, write_text_atomic
from tiktalk.media.tables import read_status

COVERAGE_VERSION = 1
MIN_COVERAGE = 0.95
TOP_REASONS = 5


class CoverageError(ValueError):
    """A split's share of videos with features is below the floor."""


def reason_kind(reason: str) -> str:
    """A failure reason with its numbers replaced by ``N``, so that ``truncated: decoded 4.1 s
    of 30.0 s`` and ``... 2.0 s of 12.5 s`` count as one kind."""
    return re.sub(r"\d+(?:\.\d+)?", "N", reason)


def coverage(status_paths: Sequence[str | os.PathLike], manifest_path: str | os.PathLike) -> dict:
    """The coverage report (see the module doc) of the shards' status tables."""
    status: dict[str, dict] = {}
    for path in status_paths:
        for row in read_status(path):
            if row["video_id"] in status:
                raise ValueError(f"{path}: video {row['video_id']!r} already has a status in another shard")
            status[row["video_id"]] = row
    manifest = read_manifest(manifest_path)
    missing = [r["video_id"] for r in manifest if r["video_id"] not in status]
    if missing:
        raise ValueError(f"{len(missing)} video(s) of {manifest_path} have no media status row, "
                         f"e.g. {missing[:5]}")
    splits = {}
    kinds: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    for split in SPLITS:
        rows = [status[r["video_id"]] for r in manifest if r["split"] == split]
        ok = sum(r["status"] == "ok" for r in rows)
        share = ok / len(rows) if rows else None
        splits[split] = {"videos": len(rows), "ok": ok, "failed": len(rows) - ok,
                         "coverage": None if share is None else round(share, 6)}
        for r in rows:
            if r["status"] != "ok":
                kind = reason_kind(r["reason"] or "failed")
                kinds[kind] += 1
                examples.setdefault(kind, []).append(r["video_id"])
    reasons = [{"reason": kind, "videos": n, "examples": examples[kind][:3]}
               for kind, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_REASONS]]
    return {"version": COVERAGE_VERSION, "splits": splits, "top_failure_reasons": reasons}


def write_coverage(status_paths: Sequence[str | os.PathLike], manifest_path: str | os.PathLike,
                   out_json: str | os.PathLike) -> dict:
    """Compute the coverage report and write it (atomically); never raises for a low share."""
    report = coverage(status_paths, manifest_path)
    write_json(out_json, report)
    return report


def below(report: dict, min_coverage: float) -> dict[str, dict]:
    """The splits of ``report`` whose share is below ``min_coverage`` (empty splits pass)."""
    if not 0.0 <= float(min_coverage) <= 1.0:
        raise ValueError(f"media.min_coverage must be in [0, 1], got {min_coverage!r}")
    return {split: s for split, s in report["splits"].items()
            if s["coverage"] is not None and s["coverage"] < min_coverage}


def describe_failure(report: dict, path: str | os.PathLike, min_coverage: float) -> str:
    """The one error message for a report below the floor."""
    low_splits = below(report, min_coverage)
    low = [f"{x} {low_splits[x]['coverage']:.3f} ({low_splits[x]['ok']} of {low_splits[x]['videos']} "
           f"videos have features)" for x in SPLITS if x in low_splits]
    reasons = "; ".join(f"{r['videos']} x {r['reason']!r} (e.g. {', '.join(r['examples'])})"
                        for r in report["top_failure_reasons"])
    return (f"media coverage below media.min_coverage {min_coverage:g}: {', '.join(low)}. "
            f"Report: {Path(path)}. Top failure reasons: {reasons or 'none recorded'}. "
            f"Retry the failed videos with `tiktalk media retry` (then run snakemake again), "
            f"or lower media.min_coverage.")


def read_coverage(path: str | os.PathLike) -> dict:
    report = read_json(path)
    if not isinstance(report, dict) or report.get("version") != COVERAGE_VERSION:
        raise ValueError(f"{path}: not a coverage report of version {COVERAGE_VERSION}")
    return report


def check_coverage(path: str | os.PathLike, min_coverage: float = MIN_COVERAGE,
                   out_ok: str | os.PathLike | None = None) -> dict:
    """Raise :class:`CoverageError` when a split of the report at ``path`` is below the floor;
    else write ``out_ok`` (one line per split) when given and return the report."""
    report = read_coverage(path)
    if below(report, min_coverage):
        raise CoverageError(describe_failure(report, path, min_coverage))
    if out_ok is not None:
        splits = report["splits"]
        lines = [f"{x}\t{splits[x]['ok']}/{splits[x]['videos']}\t{splits[x]['coverage']}"
                 for x in SPLITS if x in splits]
        write_text_atomic(out_ok, f"# media coverage >= {min_coverage:g} ({Path(path)})\n"
                          + "\n".join(lines) + "\n")
    return report
