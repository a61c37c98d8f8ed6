"""Table 3 from the metrics files, complete or without the runs that failed.

* :func:`write_table3`: the ``table3`` rule; every run's metrics file must exist.
* :func:`write_partial_table3`: after a run in which jobs failed (the workflow's ``onerror``
  handler, with ``--keep-going``): the rows of the runs whose metrics are current, and for
  each other run a row with empty metrics that says why it is missing, built from the jobs
  that blocked it and their failure records (:mod:`tiktalk.logs`). It writes
  ``table3.partial.{csv,md,tex}`` and ``table3.partial.png`` beside the complete table's files
  and never touches those: they are the ``table3`` rule's outputs, and Snakemake's bookkeeping
  of them (times, checksums) must stay its own. The ``table3`` rule removes the partial files
  once it has written the complete table.
* :func:`partial_table3_after_failure`: the workflow's ``onerror`` handler. Which metrics are
  current is Snakemake's own answer: a ``score`` job that had to run and did not finish means
  its metrics file is missing or stale (an old file is never shown as a result of this run);
  the jobs that blocked it are found by walking up the DAG from it to the jobs that failed
  (or that were ready but never ran because the run stopped without ``--keep-going``).

Reads files only (and, in the handler, the finished run's job graph): layer 0/1 imports, no
torch, no Snakemake import.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd

from tiktalk.io import read_json
from tiktalk.logs import failure_record_path
from tiktalk.metrics.bootstrap import DEFAULT_LEVEL, read_replicates
from tiktalk.report.seeds import rows_over_seeds
from tiktalk.report.tables import build_table3, load_metrics, plot_table3

PARTIAL = "partial"
_SHOWN_BLOCKERS = 2


@dataclass(frozen=True)
class Table3Files:
    """Where Table 3 goes: CSV, Markdown, LaTeX and the bar chart."""

    csv: str
    md: str
    tex: str
    png: str

    def partial(self) -> "Table3Files":
        """The same names with ``.partial`` before the suffix (``table3.partial.md``)."""
        def name(p: str) -> str:
            path = Path(p)
            return str(path.with_name(f"{path.stem}.{PARTIAL}{path.suffix}"))
        return Table3Files(name(self.csv), name(self.md), name(self.tex), name(self.png))

    def paths(self) -> tuple[str, str, str, str]:
        return (self.csv, self.md, self.tex, self.png)


@dataclass(frozen=True)
class Blocker:
    """A job that kept a run from its metrics: it failed, or the run stopped before it ran."""

    rule: str
    wildcards: Mapping[str, str] = field(default_factory=dict)
    log: str = ""
    failed: bool = True


def write_table3(metrics_paths: Mapping[str, str | os.PathLike], labels: Mapping[str, str],
                 files: Table3Files, missing: Mapping[str, str] | None = None,
                 caption: str | None = None, runs: Mapping[str, Sequence[str]] | None = None,
                 replicates: str | os.PathLike | None = None,
                 level: float = DEFAULT_LEVEL) -> pd.DataFrame:
    """Table 3 (every paper row beside ours) as CSV/Markdown/LaTeX, and its bar chart of the
    runs that have metrics; ``missing`` maps a run without metrics to the reason shown;
    ``caption`` (:func:`tiktalk.report.tables.table3_caption`) says what the runs were on.

    With ``runs`` (``{baseline: [its run per seed]}``, ``metrics_paths`` then keyed by run) and
    the ``replicates`` file of those runs: each row is the mean over its seeds with its
    bootstrap interval and spread (:mod:`tiktalk.report.seeds`)."""
    metrics = load_metrics(metrics_paths)
    spread = None
    if runs is not None:
        metrics, spread = rows_over_seeds(metrics, runs, read_replicates(replicates), level)
    table = build_table3(metrics, labels, files.csv, files.md, files.tex, all_paper_rows=True,
                         missing=missing, caption=caption, spread=spread)
    if metrics:
        plot_table3(metrics, labels, files.png, spread=spread)
    else:
        Path(files.png).unlink(missing_ok=True)
    return table


def write_partial_table3(metrics_paths: Mapping[str, str | os.PathLike],
                         blocked: Mapping[str, Sequence[Blocker]], labels: Mapping[str, str],
                         files: Table3Files) -> Table3Files:
    """The partial table (module docstring): ``metrics_paths`` holds the runs whose metrics are
    current, ``blocked`` the others with what blocked them. Returns the files written."""
    out = files.partial()
    missing = {name: missing_reason(name, blockers) for name, blockers in blocked.items()}
    write_table3(metrics_paths, labels, out, missing=missing)
    return out


def remove_partial(files: Table3Files) -> None:
    """Remove a partial table left by an earlier failed run (the complete one supersedes it)."""
    for path in files.partial().paths():
        Path(path).unlink(missing_ok=True)


def missing_reason(name: str, blockers: Sequence[Blocker]) -> str:
    """One line: why run ``name`` has no metrics, from the jobs that blocked it."""
    if not blockers:
        return "no metrics: not produced in this run (see the Snakemake log)"
    ordered = sorted(blockers, key=lambda b: not b.failed)  # failures first
    parts = [_blocker_text(name, b) for b in ordered[:_SHOWN_BLOCKERS]]
    if len(ordered) > _SHOWN_BLOCKERS:
        parts.append(f"and {len(ordered) - _SHOWN_BLOCKERS} more job(s)")
    return "; ".join(parts)


def _blocker_text(name: str, b: Blocker) -> str:
    wildcards = ", ".join(f"{k}={v}" for k, v in b.wildcards.items())
    job = f"{b.rule} ({wildcards})" if wildcards else b.rule
    prefix = "" if b.wildcards.get("baseline") == name else "not run: "
    log = f" (log: {b.log})" if b.log else ""
    if not b.failed:
        return f"{prefix}{job} was not run (the run stopped first; add --keep-going)"
    record = _failure_record(b.log)
    if record.get("status") == "failed" and record.get("reason"):
        return f"{prefix}{job} failed: {record['reason']}{log}"
    if record.get("status") == "running":
        return f"{prefix}{job} was killed before it finished{log}"
    return f"{prefix}{job} failed{log}"


def _failure_record(log: str) -> dict:
    if not log:
        return {}
    path = failure_record_path(log)
    try:
        record = read_json(path)
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


# ------------------------------------------------------------------ the onerror handler


def partial_table3_after_failure(workflow, baselines: Sequence[str], split: str,
                                 metrics_pattern: str, labels: Mapping[str, str],
                                 files: Mapping[str, str]) -> Table3Files | None:
    """Write the partial Table 3 after a run with failed jobs (module docstring).

    ``workflow``: Snakemake's workflow object, after scheduling; ``metrics_pattern``: the score
    rule's output with ``{baseline}`` left open; ``files``: the table3 rule's outputs (csv, md,
    tex, png). Does nothing when Table 3 was not a target of the run or is complete and current.
    Never raises (it must not mask the run's own error): a problem is printed as one line.
    """
    try:
        dag = workflow.dag
        failed = set(getattr(workflow.scheduler, "failed", None) or ())
        table = [j for j in dag.jobs if j.rule.name == "table3"]
        if not table or not _unfinished(dag, table[0]):
            return None
        scores = {j.wildcards.baseline: j for j in dag.jobs
                  if j.rule.name == "score" and j.wildcards.split == split}
        current, blocked = {}, {}
        for name in baselines:
            path = metrics_pattern.format(baseline=name)
            job = scores.get(name)
            if job is not None and _unfinished(dag, job):
                blocked[name] = [_blocker(j, failed) for j in _blocking_jobs(dag, failed, job)]
            elif Path(path).exists():
                current[name] = path
            else:
                blocked[name] = []
        out = write_partial_table3(current, blocked, labels, Table3Files(**files))
        print(f"Partial Table 3 ({len(current)} of {len(baselines)} baselines; the missing rows "
              f"say why): {out.md}", file=sys.stderr)
        return out
    except Exception as exc:  # noqa: BLE001 - report, never mask the run's error
        print(f"Partial Table 3 not written: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None


def _unfinished(dag, job) -> bool:
    return dag.needrun(job) and not dag.finished(job)


def _blocking_jobs(dag, failed: set, job) -> list:
    """The jobs upstream of ``job`` (itself included) that failed, or that were ready to run
    (every input made) but never ran."""
    seen, found, todo = set(), [], [job]
    while todo:
        j = todo.pop()
        if j in seen or not _unfinished(dag, j):
            continue
        seen.add(j)
        if j in failed:
            found.append(j)
            continue
        deps = [d for d in dag.job_dependencies(j) if _unfinished(dag, d)]
        if deps:
            todo.extend(deps)
        else:
            found.append(j)
    return found


def _blocker(job, failed: set) -> Blocker:
    return Blocker(job.rule.name, {str(k): str(v) for k, v in job.wildcards.items()},
                   str(job.log[0]) if job.log else "", job in failed)
