"""Resolvers: video id -> where its file is (a local path) or comes from (an http(s) URL).

The resolvers of this module (:func:`tiktalk.media.resolvers.make_resolver` picks one by the
config's ``kind``; the ``yt_dlp`` one is :mod:`tiktalk.media.ytdlp`):

``local``  (:class:`LocalDirResolver`)  ``<root>/<id>.<ext>`` for ext in ``extensions``.
``csv``    (:class:`CsvResolver`)       a user-provided ``id,url`` CSV (header ``id,url``);
           ``file://`` URLs must point under ``file_root``; only ``allowed_schemes`` accepted.
``douyin`` (:class:`DouyinApiResolver`) the official spider's iteminfo API
           (``GET {api_url}?item_ids={id}``, ``item_list[0].video.play_addr.url_list[0]``
           with ``playwm`` -> ``play``). The endpoint has answered empty results since 2023;
           it counts its empty answers so that a shard can stop early
           (:class:`SourceUnavailable`).

A resolver returns a :class:`Source`; failure raises :class:`ResolveError` with a reason that
ends up in the fetch status table.
"""

from __future__ import annotations

import csv
import json
import logging
import threading
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Protocol

from tiktalk.media.hosts import HostPolicy, HostRefused, HostUnresolved, vet_host
from tiktalk.media.ids import DEFAULT_ID_PATTERN, validate_video_id

log = logging.getLogger(__name__)

DOUYIN_ITEMINFO_URL = "https://www.iesdouyin.com/web/api/v2/aweme/iteminfo/"
DEFAULT_USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 10) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Mobile Safari/537.36"
)
VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".webm", ".m4v", ".flv", ".avi")


class ResolveError(RuntimeError):
    """The id could not be mapped to a source; ``str(exc)`` is the reason."""


class EmptyAnswer(ResolveError):
    """The source answered, with nothing for the id."""


class SourceUnavailable(RuntimeError):
    """The source answers nothing at all: the shard stops (one line saying what to use)."""


@dataclass(frozen=True)
class Source:
    """Where a video is: ``kind`` "file" (``location`` is a local path) or "url" (with the
    request ``headers`` the resolver found it needs: User-Agent, Referer, Cookie)."""

    video_id: str
    kind: str
    location: str
    headers: Mapping[str, str] = field(default_factory=dict, compare=False)


class Resolver(Protocol):
    def resolve(self, video_id: str) -> Source: ...


def _file_url_to_path(url: str) -> Path:
    parsed = urllib.parse.urlsplit(url)
    if parsed.netloc not in ("", "localhost"):
        raise ResolveError(f"file URL with a remote host is not allowed: {url}")
    return Path(urllib.request.url2pathname(parsed.path))


def _check_under(path: Path, root: Path) -> Path:
    resolved = path.resolve()
    root = root.resolve()
    if resolved != root and root not in resolved.parents:
        raise ResolveError(f"path {path} is outside the allowed root {root}")
    return resolved


class LocalDirResolver:
    """``<root>/<id><ext>`` for the first ``ext`` of ``extensions`` that exists."""

    def __init__(self, root: str | Path, extensions: tuple[str, ...] = VIDEO_EXTENSIONS,
                 id_pattern: str = DEFAULT_ID_PATTERN):
        self.root = Path(root)
        self.extensions = tuple(e if e.startswith(".") else "." + e for e in extensions)
        self.id_pattern = id_pattern

    def resolve(self, video_id: str) -> Source:
        validate_video_id(video_id, self.id_pattern)
        for ext in self.extensions:
            path = self.root / f"{video_id}{ext}"
            if path.is_file():
                return Source(video_id, "file", str(_check_under(path, self.root)))
        raise ResolveError(f"no file {video_id}{{{','.join(self.extensions)}}} in {self.root}")


def read_url_table(csv_path: str | Path) -> tuple[dict[str, str], list[str]]:
    """An ``id,url`` table: (id -> url, one line per problem naming the file and line: a bad
    header, an empty id or url, an id listed twice)."""
    csv_path = Path(csv_path)
    urls: dict[str, str] = {}
    first_line: dict[str, int] = {}
    problems: list[str] = []
    with open(csv_path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not {"id", "url"} <= set(reader.fieldnames):
            return {}, [f"{csv_path}: expected a header with columns 'id,url', got {reader.fieldnames}"]
        for row in reader:
            lineno = reader.line_num
            vid, url = (row["id"] or "").strip(), (row["url"] or "").strip()
            if not vid or not url:
                problems.append(f"{csv_path}:{lineno}: empty {'id' if not vid else 'url'}"
                                + (f" for id {vid!r}" if vid else ""))
            elif vid in urls:
                problems.append(f"{csv_path}:{lineno}: id {vid!r} listed twice (first on line "
                                f"{first_line[vid]})")
            else:
                urls[vid], first_line[vid] = url, lineno
    return urls, problems


class CsvResolver:
    """A user CSV with header ``id,url`` (:func:`read_url_table`; a table with a problem is a
    ValueError naming its first one). Unknown ids, disallowed schemes and ``file://`` URLs
    outside ``file_root`` are resolve errors (never silently followed)."""

    def __init__(self, csv_path: str | Path, allowed_schemes: tuple[str, ...] = ("https", "http", "file"),
                 file_root: str | Path | None = None, id_pattern: str = DEFAULT_ID_PATTERN):
        self.csv_path = Path(csv_path)
        self.allowed_schemes = tuple(s.lower() for s in allowed_schemes)
        self.file_root = Path(file_root) if file_root is not None else None
        self.id_pattern = id_pattern
        self.urls, problems = read_url_table(self.csv_path)
        if problems:
            more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
            raise ValueError(problems[0] + more)

    def resolve(self, video_id: str) -> Source:
        validate_video_id(video_id, self.id_pattern)
        url = self.urls.get(video_id)
        if url is None:
            raise ResolveError(f"id not in {self.csv_path.name}")
        scheme = urllib.parse.urlsplit(url).scheme.lower()
        if scheme not in self.allowed_schemes:
            raise ResolveError(f"URL scheme {scheme!r} not allowed (allowed: {', '.join(self.allowed_schemes)})")
        if scheme == "file":
            if self.file_root is None:
                raise ResolveError("file:// URL but no file_root is configured")
            path = _check_under(_file_url_to_path(url), self.file_root)
            if not path.is_file():
                raise ResolveError(f"file not found: {path}")
            return Source(video_id, "file", str(path))
        if not urllib.parse.urlsplit(url).hostname:
            raise ResolveError(f"URL without a host: {url}")
        return Source(video_id, "url", url)


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to a host the policy allows."""

    def __init__(self, policy: HostPolicy):
        self.policy = policy

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        _check_host(newurl, self.policy, "redirect to ")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _check_host(url: str, policy: HostPolicy, what: str = "") -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise ResolveError(f"iteminfo API: {what}a non-http(s) URL: {url[:80]}")
    try:
        vet_host(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), policy)
    except HostRefused as exc:
        raise ResolveError(f"iteminfo API: {what}{exc}") from None
    except HostUnresolved as exc:
        raise ResolveError(f"iteminfo API: {exc}") from None


class DouyinApiResolver:
    """The official TikTalk spider's lookup (``src/spider.py``), with ``api_url`` a parameter
    so tests can point it at a loopback server. Network errors and unexpected JSON are
    resolve errors with a reason. The API host and every redirect's host are checked against
    ``host_policy`` (no loopback/link-local/private addresses unless allowed)."""

    def __init__(self, api_url: str = DOUYIN_ITEMINFO_URL, timeout_s: float = 15.0,
                 user_agent: str = DEFAULT_USER_AGENT, id_pattern: str = DEFAULT_ID_PATTERN,
                 rate_limiter=None, host_policy: HostPolicy = HostPolicy(), stop_after_empty: int = 5):
        self.api_url = api_url
        self.timeout_s = timeout_s
        self.user_agent = user_agent
        self.id_pattern = id_pattern
        self.rate_limiter = rate_limiter
        self.host_policy = host_policy
        self.stop_after_empty = int(stop_after_empty)
        self._opener = urllib.request.build_opener(_CheckedRedirects(host_policy))
        self._lock = threading.Lock()
        self.answers = {"empty": 0, "item": 0}    # how the endpoint answered so far

    def dead_after(self, n_asked: int) -> str | None:
        """After the first ``n_asked`` ids of a shard: the one-line verdict when every one of
        them (at least ``stop_after_empty``; 0 never stops) came back empty, else None."""
        n = self.stop_after_empty
        if n < 1 or n_asked < n or self.answers["item"] or self.answers["empty"] < n_asked:
            return None
        return (f"media.source douyin_api: the iteminfo endpoint ({self.api_url}) answered nothing "
                f"for the first {n_asked} ids of the shard; it has answered empty results since "
                f"2023: use the yt_dlp, csv or local_dir sources instead (config/README.md), or set "
                f"media.source.stop_after_empty: 0 to go on anyway")

    def _answered(self, kind: str) -> None:
        with self._lock:
            self.answers[kind] += 1

    def resolve(self, video_id: str) -> Source:
        validate_video_id(video_id, self.id_pattern)
        query = urllib.parse.urlencode({"item_ids": video_id})
        url = f"{self.api_url}{'&' if '?' in self.api_url else '?'}{query}"
        if self.rate_limiter is not None:
            self.rate_limiter.wait(urllib.parse.urlsplit(url).hostname or "")
        _check_host(url, self.host_policy)
        req = urllib.request.Request(url, headers={"User-Agent": self.user_agent})
        try:
            with self._opener.open(req, timeout=self.timeout_s) as resp:
                body = resp.read(4 * 2**20 + 1)
        except urllib.error.HTTPError as exc:
            raise ResolveError(f"iteminfo API: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ResolveError(f"iteminfo API: {reason}") from None
        if len(body) > 4 * 2**20:
            raise ResolveError("iteminfo API: response larger than 4 MiB")
        if not body.strip():
            self._answered("empty")
            raise EmptyAnswer("iteminfo API: empty response")
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ResolveError("iteminfo API: response is not JSON") from None
        try:
            items = data.get("item_list") if isinstance(data, dict) else None
            if not items:
                self._answered("empty")
                raise EmptyAnswer("iteminfo API: empty item_list (video removed or private, or "
                                  "the endpoint answers nothing)")
            self._answered("item")
            play_url = items[0]["video"]["play_addr"]["url_list"][0]
        except ResolveError:
            raise
        except (KeyError, IndexError, TypeError):
            raise ResolveError("iteminfo API: no item_list[0].video.play_addr.url_list[0]") from None
        if not isinstance(play_url, str) or not play_url:
            raise ResolveError("iteminfo API: play URL is not a string")
        play_url = play_url.replace("playwm", "play")
        if urllib.parse.urlsplit(play_url).scheme.lower() not in ("http", "https"):
            raise ResolveError(f"iteminfo API: play URL is not http(s): {play_url[:80]}")
        return Source(video_id, "url", play_url)
