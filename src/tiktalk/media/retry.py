"""``tiktalk media retry``: fetch the failed videos again, and make the DAG re-run only their
shards.

A finished media stage leaves, per shard, ``results/media/{shard}/fetch.tsv`` and
``results/media/{shard}.status.tsv``. :func:`plan_retry` reads them and lists the shards that
hold a failed video (a fetch failure, or a decode failure such as a truncated download), and
:func:`apply_retry` then removes, for exactly those shards:

* the downloaded copy of each failed video (``{shard}/videos/{id}.mp4``), so it is fetched
  again instead of reused (a local source used in place is never touched);
* the shard's fetch table, the output of ``fetch_shard``.

The next ``snakemake`` run sees that output missing and re-runs ``fetch_shard`` for those
shards only, which fetches the failed ids again (every video that was fetched fine is still on
disk and is reused after validation, without any network request), then ``extract_shard`` for
those shards and whatever reads their features. Other shards are not touched. Failures whose
reason is an invalid id are not retried: the id itself is wrong, not its source.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from tiktalk.media.tables import read_fetch, read_status

NOT_RETRIED = ("invalid id:", "fetch: invalid id:")
SHARD_RE = re.compile(r"^s\d{5}$")


@dataclass
class ShardRetry:
    shard: str
    failed: dict[str, str] = field(default_factory=dict)    # video_id -> reason
    remove: list[Path] = field(default_factory=list)        # files apply_retry deletes


@dataclass
class RetryPlan:
    media_dir: Path
    shards: list[ShardRetry]
    pending: list[str] = field(default_factory=list)    # fetch table already removed

    @property
    def n_videos(self) -> int:
        return sum(len(s.failed) for s in self.shards)


def _shards(media_dir: Path) -> list[str]:
    names = {p.parent.name for p in media_dir.glob("s*/fetch.tsv")}
    names |= {p.name.split(".")[0] for p in media_dir.glob("s*.status.tsv")}
    return sorted(n for n in names if SHARD_RE.match(n))


def plan_retry(results_dir: str | os.PathLike = "results", reason: str | None = None) -> RetryPlan:
    """What a retry would do: the shards with failed videos (reason matching the regular
    expression ``reason``, when given) and the files to remove. Reads only."""
    media_dir = Path(results_dir) / "media"
    if not media_dir.is_dir():
        raise FileNotFoundError(f"{media_dir}: no media stage results here (run snakemake first, "
                                f"or pass --results)")
    rx = re.compile(reason) if reason else None
    plan: list[ShardRetry] = []
    pending: list[str] = []
    for shard in _shards(media_dir):
        fetch_tsv = media_dir / shard / "fetch.tsv"
        status_tsv = media_dir / f"{shard}.status.tsv"
        if not fetch_tsv.exists():
            pending.append(shard)        # already re-opened: the next run fetches it again
            continue
        failed = {r["video_id"]: f"fetch: {r['reason']}" for r in read_fetch(fetch_tsv)
                  if r["status"] != "ok"}
        if status_tsv.exists():
            failed.update({r["video_id"]: r["reason"] for r in read_status(status_tsv)
                           if r["status"] != "ok"})
        failed = {v: why for v, why in failed.items()
                  if not why.startswith(NOT_RETRIED) and (rx is None or rx.search(why))}
        if not failed:
            continue
        item = ShardRetry(shard, failed)
        videos = media_dir / shard / "videos"
        for vid in failed:
            copy = videos / f"{vid}.mp4"
            if copy.is_file():
                item.remove.append(copy)
        item.remove.append(fetch_tsv)
        plan.append(item)
    return RetryPlan(media_dir, plan, pending)


def apply_retry(plan: RetryPlan) -> list[Path]:
    """Remove the plan's files; returns them. Only paths inside the media directory."""
    root = plan.media_dir.resolve()
    removed = []
    for item in plan.shards:
        for path in item.remove:
            resolved = path.resolve()
            if root not in resolved.parents:
                raise ValueError(f"refusing to remove {path}: outside {plan.media_dir}")
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def describe(plan: RetryPlan, dry_run: bool) -> str:
    """Human-readable lines: per shard its failed videos, the files removed, the next step."""
    lines = [f"{shard}: fetch table already removed; the next snakemake run fetches it again"
             for shard in plan.pending]
    if not plan.shards:
        return "\n".join(lines + [f"no (other) failed videos to retry under {plan.media_dir}"])
    verb = "would remove" if dry_run else "removed"
    for item in plan.shards:
        lines.append(f"{item.shard}: {len(item.failed)} failed video(s)")
        for vid, why in item.failed.items():
            lines.append(f"  {vid}\t{why}")
        for path in item.remove:
            lines.append(f"  {verb} {path}")
    n = len(plan.shards)
    lines.append(f"{plan.n_videos} video(s) in {n} shard(s). "
                 + ("Nothing was changed (--dry-run)." if dry_run else
                    f"Now run snakemake as before (same --configfile/--profile): it re-runs "
                    f"fetch_shard and extract_shard for these {n} shard(s) only, then what reads "
                    f"their features."))
    return "\n".join(lines)


# ----------------------------------------------------------------------------- command line
def media_arguments(parser) -> None:
    """``tiktalk media retry [--results DIR] [--reason REGEX] [--dry-run]``."""
    subs = parser.add_subparsers(dest="media_command", metavar="ACTION", required=True)
    retry = subs.add_parser("retry", help="fetch the failed videos again (re-runs only their shards)",
                            description="Fetch the failed videos of a finished media stage again: "
                                        "removes the failed videos' downloads and their shards' "
                                        "fetch tables, so that the next snakemake run re-runs "
                                        "fetch_shard and extract_shard for those shards only.")
    retry.add_argument("--results", default="results", metavar="DIR",
                       help="the workflow's results directory (default: results)")
    retry.add_argument("--reason", metavar="REGEX",
                       help="retry only failures whose reason matches, e.g. 'HTTP 5|timed out'")
    retry.add_argument("--dry-run", "-n", action="store_true",
                       help="show the failed videos and the files that would be removed; change nothing")


def media_run(args) -> int:
    plan = plan_retry(args.results, args.reason)
    if not args.dry_run:
        apply_retry(plan)
    print(describe(plan, args.dry_run))
    return 0
