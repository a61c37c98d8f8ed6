"""``tiktalk media retry``: fetch the failed videos again, and re-run only their shards.

A finished media stage leaves, per shard, ``results/media/{shard}/fetch.tsv`` and
``results/media/{shard}.status.tsv``. :func:`plan_retry` reads them and lists the shards that
hold a failed video (a fetch failure, or a decode failure such as a truncated download);
:func:`apply_retry` removes the downloaded copy of each failed video
(``{shard}/videos/{id}.mp4``; a local source used in place is never touched) and what is left of
an unfinished download of it (``{id}.mp4.part`` and its validator), so that it is fetched again
from the start instead of reused or resumed; then :func:`snakemake_command` runs Snakemake with
``--forcerun`` on exactly those shards' fetch tables.

Snakemake then re-runs ``fetch_shard`` for those shards only (every video that was fetched fine
is still on disk and is reused after validation, without any network request), then their
``extract_shard`` and whatever reads their features (the coverage report and floor, the
trainings). Other shards are not touched. (Deleting the fetch tables would not do: Snakemake
does not re-run a job only because an intermediate file is gone.) Failures whose reason is an
invalid id are not retried: the id itself is wrong, not its source.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from tiktalk.media.download import partial_files
from tiktalk.media.tables import read_fetch, read_status

NOT_RETRIED = ("invalid id:", "fetch: invalid id:")
SHARD_RE = re.compile(r"^s\d{5}$")
DEFAULT_SNAKEMAKE_ARGS = ("--cores", "all")
#: fetch_shard's output relative to Snakemake's working directory (rules/media.smk)
FETCH_TARGET = "results/media/{shard}/fetch.tsv"


@dataclass
class ShardRetry:
    shard: str
    fetch_table: Path                                       # its job is forced to run again
    failed: dict[str, str] = field(default_factory=dict)    # video_id -> reason
    remove: list[Path] = field(default_factory=list)        # downloads apply_retry deletes


@dataclass
class RetryPlan:
    media_dir: Path
    shards: list[ShardRetry]

    @property
    def n_videos(self) -> int:
        return sum(len(s.failed) for s in self.shards)


def plan_retry(results_dir: str | os.PathLike = "results", reason: str | None = None) -> RetryPlan:
    """What a retry would do: the shards with failed videos (reason matching the regular
    expression ``reason``, when given) and the downloads to remove. Reads only."""
    media_dir = Path(results_dir) / "media"
    if not media_dir.is_dir():
        raise FileNotFoundError(f"{media_dir}: no media stage results here (run snakemake first, "
                                f"or pass --results)")
    rx = re.compile(reason) if reason else None
    plan: list[ShardRetry] = []
    for fetch_tsv in sorted(media_dir.glob("s*/fetch.tsv")):
        shard = fetch_tsv.parent.name
        if not SHARD_RE.match(shard):
            continue
        failed = {r["video_id"]: f"fetch: {r['reason']}" for r in read_fetch(fetch_tsv)
                  if r["status"] != "ok"}
        status_tsv = media_dir / f"{shard}.status.tsv"
        if status_tsv.exists():
            failed.update({r["video_id"]: r["reason"] for r in read_status(status_tsv)
                           if r["status"] != "ok"})
        failed = {v: why for v, why in failed.items()
                  if not why.startswith(NOT_RETRIED) and (rx is None or rx.search(why))}
        if not failed:
            continue
        item = ShardRetry(shard, fetch_tsv, failed)
        for vid in failed:
            copy = media_dir / shard / "videos" / f"{vid}.mp4"
            item.remove += [p for p in (copy, *partial_files(copy)) if p.is_file()]
        plan.append(item)
    return RetryPlan(media_dir, plan)


def apply_retry(plan: RetryPlan) -> list[Path]:
    """Remove the failed videos' downloads and partial downloads; returns them. Only paths
    inside the media dir."""
    root = plan.media_dir.resolve()
    removed = []
    for item in plan.shards:
        for path in item.remove:
            if root not in path.resolve().parents:
                raise ValueError(f"refusing to remove {path}: outside {plan.media_dir}")
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def snakemake_command(plan: RetryPlan, snakemake_args: Sequence[str] = (), dry_run: bool = False) -> list[str]:
    """The Snakemake run that re-does the plan's shards: the user's usual arguments (default
    ``--cores all``), ``-n`` for a dry run, and ``--forcerun`` on their fetch tables."""
    cmd = [sys.executable, "-m", "snakemake", *(snakemake_args or DEFAULT_SNAKEMAKE_ARGS)]
    if dry_run:
        cmd.append("-n")
    return cmd + ["--forcerun", *(FETCH_TARGET.format(shard=s.shard) for s in plan.shards)]


def describe(plan: RetryPlan, dry_run: bool) -> str:
    """Human-readable lines: per shard its failed videos and the downloads removed."""
    if not plan.shards:
        return f"no failed videos to retry under {plan.media_dir}"
    verb = "would remove" if dry_run else "removed"
    lines = []
    for item in plan.shards:
        lines.append(f"{item.shard}: {len(item.failed)} failed video(s)")
        lines += [f"  {vid}\t{why}" for vid, why in item.failed.items()]
        lines += [f"  {verb} {path}" for path in item.remove]
    lines.append(f"{plan.n_videos} video(s) in {len(plan.shards)} shard(s): Snakemake re-runs "
                 f"fetch_shard and extract_shard for these shards only, then what reads their "
                 f"features" + (" (dry run: nothing is changed)" if dry_run else ""))
    return "\n".join(lines)


# ----------------------------------------------------------------------------- command line
def retry_arguments(subs) -> None:
    """``tiktalk media retry [--results DIR] [--reason REGEX] [--dry-run] [-- SNAKEMAKE ARGS]``."""
    retry = subs.add_parser(
        "retry", help="fetch the failed videos again (re-runs only their shards)",
        description="Fetch the failed videos of a finished media stage again: remove their "
                    "downloads, then run Snakemake with --forcerun on their shards' fetch tables, "
                    "so that only those shards (and what reads their features) run again. Run it "
                    "where you run snakemake; arguments after -- go to snakemake (default: "
                    "--cores all), e.g. -- --profile slurm.")
    retry.add_argument("--results", default="results", metavar="DIR",
                       help="the workflow's results directory (default: results)")
    retry.add_argument("--reason", metavar="REGEX",
                       help="retry only failures whose reason matches, e.g. 'HTTP 5|timed out'")
    retry.add_argument("--dry-run", "-n", action="store_true",
                       help="show the failed videos and Snakemake's dry run; change nothing")
    retry.add_argument("snakemake_args", nargs="*", metavar="-- SNAKEMAKE ARGS",
                       help="passed to snakemake (default: --cores all)")


def media_run(args, run: Callable = subprocess.run) -> int:
    plan = plan_retry(args.results, args.reason)
    if not args.dry_run:
        apply_retry(plan)
    print(describe(plan, args.dry_run), flush=True)
    if not plan.shards:
        return 0
    cmd = snakemake_command(plan, args.snakemake_args, args.dry_run)
    print("$ " + shlex.join(cmd), flush=True)
    return run(cmd).returncode
