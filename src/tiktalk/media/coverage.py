"""The coverage floor: before any training reads features, each split's share of videos with
features must reach ``media.min_coverage`` (default 0.95).

:func:`write_coverage` (rule ``media_coverage``, a checkpoint) counts, per split, the videos of
the manifest whose media status is ``ok`` and writes ``results/media/coverage.json`` (format in
:mod:`tiktalk.formats`) with the most frequent failure reasons. :func:`check_coverage` (called
by the training jobs' input function once the checkpoint ran) raises :class:`CoverageError`
naming that file, the splits below the floor and the top reasons, which stops the DAG before
any training. The floor is not an input of any job: changing it re-runs no training.

Cheap to import (no torch): the Snakefile calls :func:`check_coverage` at DAG-build time.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from typing import Sequence

from tiktalk.data.manifest import read_manifest
from tiktalk.formats import SPLITS
from tiktalk.io import read_json, write_json
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


def coverage(status_paths: Sequence[str | os.PathLike], manifest_path: str | os.PathLike,
             min_coverage: float = MIN_COVERAGE) -> dict:
    """The coverage report (see the module doc) of the shards' status tables."""
    if not 0.0 <= float(min_coverage) <= 1.0:
        raise ValueError(f"media.min_coverage must be in [0, 1], got {min_coverage!r}")
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
                         "coverage": None if share is None else round(share, 6),
                         "passed": share is None or share >= min_coverage}
        for r in rows:
            if r["status"] != "ok":
                kind = reason_kind(r["reason"] or "failed")
                kinds[kind] += 1
                examples.setdefault(kind, []).append(r["video_id"])
    reasons = [{"reason": kind, "videos": n, "examples": examples[kind][:3]}
               for kind, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_REASONS]]
    return {"version": COVERAGE_VERSION, "min_coverage": float(min_coverage),
            "passed": all(s["passed"] for s in splits.values()), "splits": splits,
            "top_failure_reasons": reasons}


def write_coverage(status_paths: Sequence[str | os.PathLike], manifest_path: str | os.PathLike,
                   out_json: str | os.PathLike, min_coverage: float = MIN_COVERAGE) -> dict:
    """Compute the coverage report and write it (atomically); never raises for a low share."""
    report = coverage(status_paths, manifest_path, min_coverage)
    write_json(out_json, report)
    return report


def describe_failure(report: dict, path: str | os.PathLike) -> str:
    """The one error message for a report below the floor."""
    low = [f"{split} {s['coverage']:.3f} ({s['ok']} of {s['videos']} videos have features)"
           for split, s in report["splits"].items() if not s["passed"]]
    reasons = "; ".join(f"{r['videos']} x {r['reason']!r} (e.g. {', '.join(r['examples'])})"
                        for r in report["top_failure_reasons"])
    return (f"media coverage below media.min_coverage {report['min_coverage']:g}: {', '.join(low)}. "
            f"Report: {Path(path)}. Top failure reasons: {reasons or 'none recorded'}. "
            f"Retry the failed videos with `tiktalk media retry` (then run snakemake again), "
            f"or lower media.min_coverage.")


def check_coverage(path: str | os.PathLike) -> dict:
    """Read a coverage report; raise :class:`CoverageError` when a split is below the floor."""
    report = read_json(path)
    if not isinstance(report, dict) or report.get("version") != COVERAGE_VERSION:
        raise ValueError(f"{path}: not a coverage report of version {COVERAGE_VERSION}")
    if not report["passed"]:
        raise CoverageError(describe_failure(report, path))
    return report
