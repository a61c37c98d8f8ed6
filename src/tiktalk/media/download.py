"""HTTP(S) download of one video: timeouts, retries with backoff + jitter, Range resume into
``<dest>.part``, atomic rename, size cap, and validation of what arrived with PyAV.

A resume is safe only if the server still has the same file: the first response's strong
``ETag`` (else its ``Last-Modified``) is kept beside the partial file (``<dest>.part.validator``)
and every resume sends it as ``If-Range``, so a server whose file changed answers with the whole
new file (200) instead of the rest of the new one. A partial file without a validator (the
server sent neither header, or the file is left from an older run) is never resumed: the
download starts over.

Every hop (the URL and each redirect) has its host resolved and checked against the
:class:`~tiktalk.media.hosts.HostPolicy` (no loopback, link-local or private addresses unless
``allow_private_hosts``), and the connection goes to an address that was checked.

Validation (:func:`validate_media`) opens the file, decodes its first frame and reads the rest
of the video stream's packets: a file whose index announces more than it holds (a cut body
behind an index at the front) is refused as ``truncated: file holds X s of Y s``.

Only the standard library's http.client is used; no shell command is ever built from an id
or a URL.
"""

from __future__ import annotations

import http.client
import logging
import os
import random
import re
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from tiktalk.media.hosts import (HostPolicy, HostRefused, HostUnresolved, Resolve, parse_networks,
                                 system_resolve, vetted_connection)
from tiktalk.settings import from_mapping

log = logging.getLogger(__name__)

RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}


class DownloadError(RuntimeError):
    """The download failed for good; ``str(exc)`` is the reason."""


class _Retry(Exception):
    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass(frozen=True)
class DownloadConfig:
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 30.0        # per socket read: a stall longer than this is an error
    total_timeout_s: float = 600.0      # cap on all attempts of one video together
    retries: int = 4                    # extra attempts after the first
    backoff_base_s: float = 1.0         # delay before retry k: base * 2**k, jittered in [0.5, 1]x
    backoff_max_s: float = 60.0
    max_bytes: int = 512 * 2**20
    max_redirects: int = 5
    host_min_interval_s: float = 0.0    # per-host rate limit: min seconds between requests
    workers: int = 4                    # concurrent downloads in a shard (threads)
    user_agent: str = "tiktalk-repro/0.1"
    allowed_schemes: tuple[str, ...] = ("https", "http")
    chunk_bytes: int = 256 * 1024
    allow_private_hosts: bool = False   # fetch from loopback / link-local / private addresses
    private_allowlist: tuple[str, ...] = ()   # networks allowed anyway, e.g. ("10.1.2.0/24",)
    min_complete_fraction: float = 0.9  # a file holding less of its duration is truncated

    def __post_init__(self):
        bad = [s for s in self.allowed_schemes if s not in ("http", "https")]
        if bad:
            raise ValueError(f"media.download.allowed_schemes: {bad} not supported (http, https)")
        if not 0.0 <= self.min_complete_fraction <= 1.0:
            raise ValueError("media.download.min_complete_fraction must be in [0, 1]")
        parse_networks(self.private_allowlist, "media.download.private_allowlist")

    @classmethod
    def from_dict(cls, d: Mapping | None) -> "DownloadConfig":
        """Strict: an unknown key is an error naming it (``media.download``)."""
        return from_mapping(cls, d, "media.download")

    @property
    def host_policy(self) -> HostPolicy:
        return HostPolicy(self.allow_private_hosts,
                          parse_networks(self.private_allowlist, "media.download.private_allowlist"))


class HostRateLimiter:
    """At most one request per ``min_interval_s`` to each host (thread-safe)."""

    def __init__(self, min_interval_s: float = 0.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.min_interval_s = float(min_interval_s)
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()
        self._clock, self._sleep = clock, sleep

    def wait(self, host: str) -> float:
        """Block until a request to ``host`` is allowed; return the seconds waited."""
        if self.min_interval_s <= 0:
            return 0.0
        with self._lock:
            now = self._clock()
            slot = max(now, self._next.get(host, now))
            self._next[host] = slot + self.min_interval_s
        delay = slot - now
        if delay > 0:
            self._sleep(delay)
        return delay


#: decoded frames a file needs to be a video (a still image has one)
MIN_VIDEO_FRAMES = 2
#: leading bytes (lower-cased, as validate_media compares them) of compressed data: a body sent
#: with a Content-Encoding and saved as it came
COMPRESSED_MAGIC = ((b"\x1f\x8b", "gzip"), (b"\x28\xb5\x2f\xfd", "zstd"), (b"bzh", "bzip2"),
                    (b"\xfd7zxz\x00", "xz"))


def validate_media(path: str | Path, min_complete_fraction: float = 0.9) -> dict:
    """Open ``path`` with PyAV, decode its first video frames and read every video packet.

    A video is a video stream with a duration and at least :data:`MIN_VIDEO_FRAMES` decoded
    frames: a still image (a PNG or JPEG named ``.mp4``) is not one. Returns ``{"has_video",
    "has_audio", "duration", "decoded_s"}``; raises :class:`DownloadError` with a reason
    (empty, not a media file, no video stream, no decodable frame, a still image, or
    ``truncated: file holds X s of Y s`` when the packets end before ``min_complete_fraction``
    of the announced duration).
    """
    import av

    from tiktalk.media.decode import packet_end, probe_duration, stream_start, truncation

    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise DownloadError("empty file (0 bytes)")
    with open(path, "rb") as fh:
        head = fh.read(512).lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<?xml", b"{")):
        kind = "JSON" if head.startswith(b"{") else "HTML/XML"
        raise DownloadError(f"not a media file: got {kind} text ({size} bytes)")
    packed = next((name for magic, name in COMPRESSED_MAGIC if head.startswith(magic)), None)
    if packed:
        raise DownloadError(f"not a media file: {packed}-compressed data ({size} bytes)")
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.video:
                raise DownloadError("no video stream")
            vs = container.streams.video[0]
            duration = probe_duration(container, vs)
            fps = float(vs.average_rate or vs.guessed_rate or 0) or None
            start, frames, read_end = stream_start(vs), 0, 0.0
            try:
                for packet in container.demux(vs):
                    end = packet_end(packet, start, 1.0 / fps if fps else None)
                    if end is not None:
                        read_end = max(read_end, end)
                    if frames < MIN_VIDEO_FRAMES:
                        frames += len(packet.decode())
            except Exception as exc:
                if not frames:
                    raise
                log.info("%s: damaged video stream after %.1f s (%s)", path.name, read_end,
                         type(exc).__name__)
            if not frames:
                raise DownloadError("video stream has no decodable frame")
            what = f"{container.format.name}, {vs.codec_context.name}"
            if frames < MIN_VIDEO_FRAMES:
                raise DownloadError(f"a still image, not a video ({what}: {frames} decoded frame)")
            if duration is None:
                raise DownloadError(f"not a video: the {what} stream has no duration")
            short = truncation(read_end, duration, float("inf"), min_complete_fraction)
            if short:
                raise DownloadError(f"truncated: {short.replace('decoded', 'file holds', 1)}")
            container_s = container.duration / 1e6 if container.duration else None
            return {"has_video": True, "has_audio": bool(container.streams.audio),
                    "duration": container_s, "decoded_s": round(read_end, 3)}
    except DownloadError:
        raise
    except Exception as exc:  # av.error.* and friends
        raise DownloadError(f"not a readable media file ({type(exc).__name__}: {exc})") from None


def _backoff(cfg: DownloadConfig, attempt: int, rng: random.Random) -> float:
    d = min(cfg.backoff_max_s, cfg.backoff_base_s * (2 ** attempt))
    return d * rng.uniform(0.5, 1.0)


def _connect(url: str, cfg: DownloadConfig, timeout: float,
             resolve: Resolve = system_resolve) -> tuple[http.client.HTTPConnection, str]:
    """A connection for ``url`` to an address of its host that the host policy allows."""
    try:
        return vetted_connection(url, cfg.host_policy, timeout, resolve)
    except HostRefused as exc:
        raise DownloadError(str(exc)) from None
    except HostUnresolved as exc:
        raise _Retry(str(exc)) from None
    except ValueError as exc:
        raise DownloadError(str(exc)) from None


def download(url: str, dest: str | Path, cfg: DownloadConfig | None = None, *,
             rate_limiter: HostRateLimiter | None = None, validate: bool = True,
             sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None,
             resolve: Resolve = system_resolve, headers: Mapping[str, str] | None = None) -> dict:
    """Download ``url`` to ``dest``; return ``{"path", "bytes", "attempts", "resumed"}``.

    Bytes go to ``<dest>.part``; a retry after a dropped connection asks for the rest with
    ``Range: bytes=<have>-`` and ``If-Range`` (module doc; a server that answers 200 instead
    restarts the file). Only a complete file that PyAV can open (with a video stream) is
    renamed onto ``dest``. Every hop's host is checked against ``cfg.host_policy``
    (``resolve`` is the name resolver, replaceable in tests). ``headers``: extra request
    headers (a resolver's User-Agent, Referer, Cookie); ``Cookie`` and ``Authorization`` are
    sent to the URL's own host only, never after a redirect to another host. Raises
    :class:`DownloadError` with the reason of the last failure.
    """
    cfg = cfg or DownloadConfig()
    rng = rng or random.Random()
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part, _ = partial_files(dest)
    if part.exists() and _validator(part) is None:
        _discard(part)                 # nothing proves the server's file is still the same
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in cfg.allowed_schemes:
        raise DownloadError(f"URL scheme {scheme!r} not allowed")
    deadline = time.monotonic() + cfg.total_timeout_s
    attempts, resumed, last_reason = 0, False, "no attempt made"
    for attempt in range(cfg.retries + 1):
        attempts += 1
        try:
            _attempt(url, part, cfg, deadline, rate_limiter, resolve, headers or {})
            break
        except _Retry as exc:
            last_reason = str(exc)
            if attempt == cfg.retries:
                raise DownloadError(f"{last_reason} (gave up after {attempts} attempts)") from None
            delay = exc.retry_after if exc.retry_after is not None else _backoff(cfg, attempt, rng)
            if time.monotonic() + delay >= deadline:
                raise DownloadError(f"{last_reason} (total time cap {cfg.total_timeout_s:g}s reached)") from None
            log.info("retry %d for %s in %.2fs: %s", attempt + 1, dest.name, delay, last_reason)
            if part.exists() and part.stat().st_size > 0 and _validator(part) is not None:
                resumed = True
            sleep(delay)
        except DownloadError:
            _discard(part)
            raise
    size = part.stat().st_size
    if validate:
        try:
            validate_media(part, cfg.min_complete_fraction)
        except DownloadError:
            _discard(part)
            raise
    os.replace(part, dest)
    _discard(part)
    return {"path": str(dest), "bytes": size, "attempts": attempts, "resumed": resumed}


def partial_files(dest: str | Path) -> tuple[Path, Path]:
    """The files of an unfinished download of ``dest``: the bytes so far (``<dest>.part``) and
    the validator a resume sends as ``If-Range`` (``<dest>.part.validator``)."""
    dest = Path(dest)
    return dest.with_name(dest.name + ".part"), dest.with_name(dest.name + ".part.validator")


def _validator_path(part: Path) -> Path:
    return part.with_name(part.name + ".validator")


def _validator(part: Path) -> str | None:
    """The If-Range value kept for ``part``, None if there is none."""
    try:
        value = _validator_path(part).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return value or None


def _response_validator(resp) -> str | None:
    """A validator If-Range may carry: a strong ETag, else Last-Modified (RFC 9110 13.1.5)."""
    etag = (resp.getheader("ETag") or "").strip()
    if etag and not etag.startswith("W/"):
        return etag
    return (resp.getheader("Last-Modified") or "").strip() or None


def _discard(part: Path) -> None:
    part.unlink(missing_ok=True)
    _validator_path(part).unlink(missing_ok=True)


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


#: request headers that go to the first URL's host only
PRIVATE_HEADERS = ("cookie", "authorization")


def _attempt(url: str, part: Path, cfg: DownloadConfig, deadline: float,
             rate_limiter: HostRateLimiter | None, resolve: Resolve = system_resolve,
             extra_headers: Mapping[str, str] = {}) -> None:
    """One attempt (following redirects); returns when ``part`` holds the whole body."""
    origin = urllib.parse.urlsplit(url).netloc.lower()
    have = part.stat().st_size if part.exists() else 0
    validator = _validator(part) if have > 0 else None
    if have > 0 and validator is None:
        _discard(part)                 # not resumable: start over
        have = 0
    for hop in range(cfg.max_redirects + 1):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DownloadError(f"total time cap {cfg.total_timeout_s:g}s reached")
        parts = urllib.parse.urlsplit(url)
        if parts.scheme.lower() not in cfg.allowed_schemes:
            raise DownloadError(f"redirect to disallowed scheme {parts.scheme!r}")
        try:
            conn, path = _connect(url, cfg, min(cfg.connect_timeout_s, remaining), resolve)
        except DownloadError as exc:
            raise DownloadError(f"redirect {hop}: {exc}" if hop else str(exc)) from None
        if rate_limiter is not None:
            rate_limiter.wait(parts.hostname or "")
        try:
            same_host = parts.netloc.lower() == origin
            headers = {"User-Agent": cfg.user_agent, "Accept": "*/*"}
            headers.update({k: v for k, v in extra_headers.items()
                            if same_host or k.lower() not in PRIVATE_HEADERS})
            headers["Accept-Encoding"] = "identity"
            if have > 0:
                headers["Range"] = f"bytes={have}-"
                headers["If-Range"] = validator
            try:
                conn.connect()
                conn.sock.settimeout(max(0.001, min(cfg.read_timeout_s, deadline - time.monotonic())))
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
            except (socket.timeout, TimeoutError):
                raise _Retry("timed out connecting or waiting for the response") from None
            except (ConnectionError, http.client.HTTPException, OSError) as exc:
                raise _Retry(f"connection error: {type(exc).__name__}: {exc}") from None
            status = resp.status
            if status in (301, 302, 303, 307, 308):
                loc = resp.getheader("Location")
                resp.read(64 * 1024)
                if not loc:
                    raise DownloadError(f"HTTP {status} without Location")
                url = urllib.parse.urljoin(url, loc)
                continue
            if status == 416 and have > 0:
                m = re.match(r"bytes\s+\*/(\d+)", resp.getheader("Content-Range") or "")
                if m and int(m.group(1)) == have:
                    return  # the .part already holds the whole file
                _discard(part)
                raise _Retry("HTTP 416 for a stale partial file; restarting")
            if status in RETRYABLE_STATUS:
                ra = resp.getheader("Retry-After")
                retry_after = float(ra) if ra and ra.strip().isdigit() else None
                raise _Retry(f"HTTP {status}", retry_after=min(retry_after, cfg.backoff_max_s) if retry_after else None)
            if status not in (200, 206):
                raise DownloadError(f"HTTP {status} {resp.reason}".strip())
            total: int | None
            if status == 206 and have > 0:
                m = _CONTENT_RANGE.match(resp.getheader("Content-Range") or "")
                if not m or int(m.group(1)) != have:
                    _discard(part)
                    raise _Retry(f"bad Content-Range for resume: {resp.getheader('Content-Range')!r}")
                now = _response_validator(resp)
                if now is not None and now != validator:
                    # a server that ignored If-Range: the rest of another file
                    _discard(part)
                    raise _Retry(f"the file changed on the server ({validator} -> {now}); restarting")
                total = int(m.group(3)) if m.group(3) != "*" else None
                mode = "ab"
            else:
                have = 0                   # the whole (maybe new) file: its validator from now on
                cl = resp.getheader("Content-Length")
                total = int(cl) if cl and cl.isdigit() else None
                mode = "wb"
                _validator_path(part).unlink(missing_ok=True)
                fresh = _response_validator(resp)
                if fresh is not None:
                    _validator_path(part).write_text(fresh + "\n", encoding="utf-8")
            if total is not None and total > cfg.max_bytes:
                raise DownloadError(f"file too large: {total} bytes > max_bytes {cfg.max_bytes}")
            encoding = (resp.getheader("Content-Encoding") or "identity").strip().lower()
            if encoding != "identity":
                raise DownloadError(f"server sent a {encoding}-encoded body (Content-Encoding: "
                                    f"{encoding}) although the request accepted identity only")
            ctype = (resp.getheader("Content-Type") or "").lower()
            if ctype.startswith("text/html"):
                raise DownloadError(f"server sent an HTML page (Content-Type {ctype}), not a video")
            _stream_body(resp, conn, part, mode, have, total, cfg, deadline)
            return
        finally:
            conn.close()
    raise DownloadError(f"more than {cfg.max_redirects} redirects")


def _stream_body(resp, conn, part: Path, mode: str, have: int, total: int | None,
                 cfg: DownloadConfig, deadline: float) -> None:
    size = have
    with open(part, mode) as fh:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DownloadError(f"total time cap {cfg.total_timeout_s:g}s reached after {size} bytes")
            if conn.sock is not None:
                conn.sock.settimeout(max(0.001, min(cfg.read_timeout_s, left)))
            try:
                chunk = resp.read1(cfg.chunk_bytes) if hasattr(resp, "read1") else resp.read(cfg.chunk_bytes)
            except (socket.timeout, TimeoutError):
                fh.flush()
                raise _Retry(f"read timed out after {size} bytes") from None
            except http.client.IncompleteRead as exc:
                fh.write(exc.partial)
                raise _Retry(f"connection dropped after {size + len(exc.partial)} bytes") from None
            except (ConnectionError, http.client.HTTPException, OSError) as exc:
                raise _Retry(f"connection error after {size} bytes: {type(exc).__name__}") from None
            if not chunk:
                break
            fh.write(chunk)
            size += len(chunk)
            if size > cfg.max_bytes:
                fh.close()
                _discard(part)
                raise DownloadError(f"file too large: more than max_bytes {cfg.max_bytes}")
    if total is not None and size < total:
        raise _Retry(f"connection dropped after {size} of {total} bytes")
    if total is not None and size > total:
        _discard(part)
        raise _Retry(f"got {size} bytes, more than the announced {total}")
