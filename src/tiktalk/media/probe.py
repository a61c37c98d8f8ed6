"""``tiktalk media probe``: before a run, resolve and fetch a handful of video ids with each
video source, and say per source how many worked and why the others did not.

It is the first check on a cluster's login node (where ``fetch_shard`` runs): it takes ``n``
ids of the release (a seeded sample; or ``--ids FILE``), fetches them exactly as a shard job
would (:func:`tiktalk.media.shard.fetch_shard`: the config's ``media.download`` settings, host
checks, caps and validation) into a scratch directory, and prints::

    yt_dlp: 18 of 20 videos fetched
      2  resolve: yt-dlp: [Douyin] <id>: Fresh cookies (not necessarily logged in) are needed ...
    douyin_api: stopped: media.source douyin_api: the iteminfo endpoint ... answered nothing ...

Reasons are grouped with the video id replaced by ``<id>``. ``--source`` (repeatable) names a
source kind (its block is taken from the config when the config's source is of that kind) or
a whole block as YAML (``'{kind: csv, csv: urls.csv}'``); without it the config's
``media.source`` is probed. The exit status is 0 when every source probed fetched at least one
video, else 1.
"""

from __future__ import annotations

import random
import re
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from tiktalk.media.resolvers import source_kind

DEFAULT_CONFIG = "config/tiktalk.yaml"
MANIFEST = "results/data/videos.tsv"
SPLIT_FILES = ("train.json", "val.json", "test.json")
MAX_REASONS = 6


@dataclass
class ProbeResult:
    name: str                                   # how the source is shown ("yt_dlp", "csv", ...)
    n: int = 0
    ok: int = 0
    reasons: Counter = field(default_factory=Counter)   # grouped reason -> videos
    stopped: str | None = None                  # the source stopped the shard (one line)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        head = f"{self.name}: "
        if self.stopped:
            return [head + f"stopped: {self.stopped}"]
        out = [head + f"{self.ok} of {self.n} videos fetched ({self.seconds:.0f} s)"]
        for reason, count in self.reasons.most_common(MAX_REASONS):
            out.append(f"  {count:>3}  {reason}")
        rest = sum(self.reasons.values()) - sum(c for _, c in self.reasons.most_common(MAX_REASONS))
        if rest:
            out.append(f"  {rest:>3}  (other reasons)")
        return out


def load_config(paths: Sequence[str | Path]) -> dict:
    """The config files merged in order, as Snakemake merges several ``--configfile``."""
    import yaml

    def merge(base: dict, over: Mapping) -> dict:
        out = dict(base)
        for k, v in over.items():
            out[k] = merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else v
        return out

    config: dict = {}
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            config = merge(config, yaml.safe_load(fh) or {})
    return config


def release_ids(config: Mapping, ids_file: str | Path | None = None,
                manifest: str | Path = MANIFEST) -> list[str]:
    """The video ids to sample from: ``ids_file`` (one id a line, or a TSV whose first column is
    the id), else the manifest of an earlier run, else the release files. Sorted, unique."""
    import json

    if ids_file:
        lines = Path(ids_file).read_text(encoding="utf-8").splitlines()
        ids = [ln.split("\t")[0].split(",")[0].strip() for ln in lines]
        return sorted({i for i in ids if i and i not in ("video_id", "id")})
    if Path(manifest).is_file():
        from tiktalk.data.manifest import read_manifest

        return sorted({row["video_id"] for row in read_manifest(manifest)})
    release = config.get("release") or {}
    if release.get("source") != "release" or not release.get("dir"):
        raise ValueError("no video ids: the config has no release.dir (the demo?) and there is no "
                         f"{manifest}; give --ids FILE")
    found: set[str] = set()
    for name in SPLIT_FILES:
        path = Path(release["dir"]) / name
        if path.is_file():
            with open(path, encoding="utf-8") as fh:
                found.update(json.load(fh))
    if not found:
        raise ValueError(f"no video ids: no {', '.join(SPLIT_FILES)} in {release['dir']}")
    return sorted(found)


def sources_to_probe(config: Mapping, wanted: Sequence[str]) -> list[dict]:
    """The ``media.source`` blocks named by ``--source`` values (module doc); the config's own
    when none is named."""
    import yaml

    own = dict((config.get("media") or {}).get("source") or {})
    if not wanted:
        if not own:
            raise ValueError("the config has no media.source; name one with --source")
        return [own]
    out = []
    for value in wanted:
        parsed = yaml.safe_load(value) if value.strip().startswith("{") else None
        if isinstance(parsed, Mapping):
            out.append(dict(parsed))
        elif own and source_kind(own) == source_kind({"kind": value}):
            out.append(own)
        else:
            out.append({"kind": value})
    return out


def group_reason(reason: str, video_id: str) -> str:
    """A failure reason with its video id replaced by ``<id>`` (so equal causes group)."""
    return re.sub(re.escape(video_id), "<id>", reason) if video_id else reason


def probe_source(source: Mapping, ids: Sequence[str], download_cfg: Mapping | None, scratch: Path,
                 id_pattern: str | None = None) -> ProbeResult:
    """Fetch ``ids`` with one source into ``scratch`` (as a shard job would); the tally."""
    from tiktalk.media.shard import fetch_shard
    from tiktalk.media.sources import SourceUnavailable

    name = str(source.get("kind"))
    result = ProbeResult(name, n=len(ids))
    scratch.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    try:
        rows = fetch_shard(ids, source, download_cfg, scratch / "videos", scratch / "fetch.tsv",
                           id_pattern=id_pattern)
    except SourceUnavailable as exc:
        result.stopped = str(exc)
        return result
    except ValueError as exc:          # a source block that cannot be built (a missing file...)
        result.stopped = str(exc)
        return result
    result.seconds = time.monotonic() - t0
    result.ok = sum(r["status"] == "ok" for r in rows)
    result.reasons = Counter(group_reason(r["reason"], r["video_id"]) for r in rows if r["status"] != "ok")
    return result


def probe(config: Mapping, n: int = 20, sources: Sequence[str] = (), ids_file: str | None = None,
          seed: int = 0, keep: str | Path | None = None, manifest: str | Path = MANIFEST) -> list[ProbeResult]:
    """Probe every source named (module doc) on the same ``n`` ids; ``keep``: leave the
    downloads there (``keep/<i>-<kind>/``), else they go with a scratch directory."""
    ids = release_ids(config, ids_file, manifest)
    picked = sorted(random.Random(seed).sample(ids, min(n, len(ids))))
    media = config.get("media") or {}
    pattern = (config.get("data") or {}).get("video_id_pattern")
    root = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="tiktalk-probe-"))
    try:
        return [probe_source(src, picked, media.get("download"), root / f"{i}-{src.get('kind')}", pattern)
                for i, src in enumerate(sources_to_probe(config, sources))]
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


# ----------------------------------------------------------------------------- command line
HELP = "resolve and fetch a few videos with each source, and say why others fail"
DESCRIPTION = ("Before a run (on the cluster's login node): resolve and fetch N videos of the "
               "release with the config's video source (or each --source), exactly as the fetch "
               "jobs would, and print per source how many worked and why the others did not. "
               "Exit status 1 when a source fetched nothing.")


def probe_arguments(subs) -> None:
    """``tiktalk media probe [--n 20] [--source KIND|YAML ...] [--configfile FILE ...]``."""
    p = subs.add_parser("probe", help=HELP, description=DESCRIPTION)
    p.add_argument("--n", type=int, default=20, help="videos to try (default 20)")
    p.add_argument("--source", action="append", default=[], metavar="KIND|YAML",
                   help="a source kind (yt_dlp, douyin_api, csv, local_dir; its block from the config "
                        "when the config's source is of that kind) or a block as YAML, e.g. "
                        "'{kind: csv, csv: urls.csv}'; repeat to compare sources (default: the "
                        "config's media.source)")
    p.add_argument("--configfile", nargs="+", default=[DEFAULT_CONFIG], metavar="FILE",
                   help=f"config file(s), merged in order (default {DEFAULT_CONFIG})")
    p.add_argument("--ids", metavar="FILE", help="ids to sample from (one a line); default: the "
                   f"manifest {MANIFEST} when there is one, else the release files")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample of ids (default 0)")
    p.add_argument("--keep", metavar="DIR", help="keep the downloads in DIR (default: removed)")


def probe_run(args) -> int:
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.n < 1:
        raise ValueError("--n must be at least 1")
    config = load_config(args.configfile)
    results = probe(config, args.n, args.source, args.ids, args.seed, args.keep)
    for result in results:
        print("\n".join(result.lines()), flush=True)
    return 0 if all(r.ok for r in results) else 1
