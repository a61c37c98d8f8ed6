"""``media.source``: which resolver a config names (:func:`make_resolver`), and what can be
checked about it before any job runs (:func:`source_problems`, called at DAG build).

Kinds (aliases in :data:`KIND_ALIASES`):

``yt_dlp``     :class:`tiktalk.media.ytdlp.YtDlpResolver` (the paper config's default):
               ``url_template``, ``cookies``, ``min_interval_s``, ``timeout_s``, ``format``,
               ``user_agent``.
``local_dir``  :class:`tiktalk.media.sources.LocalDirResolver`: ``root``, ``extensions``.
``csv``        :class:`tiktalk.media.sources.CsvResolver`: ``csv``, ``allowed_schemes``,
               ``file_root``.
``douyin_api`` :class:`tiktalk.media.sources.DouyinApiResolver`: ``api_url``, ``timeout_s``,
               ``user_agent``, ``stop_after_empty``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from tiktalk.media.hosts import HostPolicy
from tiktalk.media.ids import DEFAULT_ID_PATTERN
from tiktalk.media.sources import (DOUYIN_ITEMINFO_URL, DEFAULT_USER_AGENT, VIDEO_EXTENSIONS, CsvResolver,
                                   DouyinApiResolver, LocalDirResolver, Resolver, read_url_table)

KIND_ALIASES = {"local_dir": "local", "dir": "local", "douyin_api": "douyin", "iteminfo": "douyin",
                "yt-dlp": "yt_dlp", "ytdlp": "yt_dlp"}
#: problem lines of one check shown at most (then "... and N more")
MAX_PROBLEM_LINES = 10


def source_kind(cfg: Mapping) -> str:
    """The canonical kind of a ``media.source`` block ("local", "csv", "douyin", "yt_dlp")."""
    kind = cfg.get("kind")
    return KIND_ALIASES.get(kind, kind)


def make_resolver(cfg: Mapping, host_policy: HostPolicy = HostPolicy()) -> Resolver:
    """Build a resolver from a ``media.source`` mapping (module doc; ``id_pattern`` optional).
    ``host_policy`` guards the resolver's own requests (douyin_api, yt_dlp); a CSV's URLs are
    checked when they are downloaded."""
    kind = source_kind(cfg)
    pattern = cfg.get("id_pattern") or DEFAULT_ID_PATTERN
    if kind == "local":
        if not cfg.get("root"):
            raise ValueError("resolver kind 'local' needs 'root'")
        exts = tuple(cfg.get("extensions") or VIDEO_EXTENSIONS)
        return LocalDirResolver(cfg["root"], extensions=exts, id_pattern=pattern)
    if kind == "csv":
        if not cfg.get("csv"):
            raise ValueError("resolver kind 'csv' needs 'csv'")
        return CsvResolver(cfg["csv"], allowed_schemes=tuple(cfg.get("allowed_schemes") or ("https", "http", "file")),
                           file_root=cfg.get("file_root"), id_pattern=pattern)
    if kind == "douyin":
        return DouyinApiResolver(api_url=cfg.get("api_url") or DOUYIN_ITEMINFO_URL,
                                 timeout_s=float(cfg.get("timeout_s", 15.0)),
                                 user_agent=cfg.get("user_agent") or DEFAULT_USER_AGENT,
                                 host_policy=host_policy, id_pattern=pattern,
                                 stop_after_empty=int(cfg.get("stop_after_empty", 5)))
    if kind == "yt_dlp":
        from tiktalk.media.ytdlp import resolver_from_config

        return resolver_from_config(cfg, host_policy, pattern)
    raise ValueError(f"unknown resolver kind {kind!r} (expected 'yt_dlp', 'local_dir', 'csv' or 'douyin_api')")


def source_problems(cfg: Mapping, where: str = "media.source") -> list[str]:
    """What is wrong with the files a ``media.source`` block names, one line each: the ``id,url``
    table of ``csv`` (missing, bad header, an empty id or url, an id listed twice) and the
    cookies file of ``yt_dlp``. Paths are relative to the working directory, as the jobs see
    them."""
    kind = source_kind(cfg)
    lines: list[str] = []
    if kind == "csv" and cfg.get("csv"):
        path = Path(cfg["csv"])
        if not path.is_file():
            return [f"{where}.csv: no file {path}"]
        _, problems = read_url_table(path)
        lines = [f"{where}.csv: {p}" for p in problems]
    elif kind == "yt_dlp" and cfg.get("cookies"):
        path = Path(cfg["cookies"])
        if not path.is_file():
            return [f"{where}.cookies: no file {path} (export the site's cookies, config/README.md)"]
    if len(lines) > MAX_PROBLEM_LINES:
        lines = lines[:MAX_PROBLEM_LINES] + [f"{where}: ... and {len(lines) - MAX_PROBLEM_LINES} more problems"]
    return lines
