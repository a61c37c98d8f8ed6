"""The ``yt_dlp`` source: a video id -> its page (``url_template``, default Douyin's
``https://www.douyin.com/video/{id}``) -> yt-dlp's extractor for that site -> one http(s) media
URL and the request headers (and cookies) it needs. The bytes are then fetched by the project's
own downloader (:func:`tiktalk.media.download.download`), so a video from yt-dlp has every
guarantee a video from a CSV has: the host checks on every hop, the size and time caps, the
If-Range resume, the validation of what arrived and a per-video reason in the status tables.

yt-dlp is only asked to *extract* (``download=False``): its own downloader, merger and
post-processors never run, and a format that needs them (HLS/DASH pieces, separate video and
audio) is not chosen (``format``, default :data:`DEFAULT_FORMAT`).

Every request yt-dlp's extractor makes goes through :class:`VettedRH`, the only request handler
the resolver's ``YoutubeDL`` has: each hop's host (the page, the API, every redirect) is
resolved and checked against the same :class:`~tiktalk.media.hosts.HostPolicy` as the
downloads, the connection goes to an address that was checked, one request per
``min_interval_s`` per host (:class:`~tiktalk.media.download.HostRateLimiter`), no proxy (a
proxy would resolve the names itself), and the response body is capped.

Cookies (``cookies``): a Netscape-format cookies file, as browser extensions and
``yt-dlp --cookies-from-browser ... --cookies FILE`` write it (config/README.md says how).
Douyin's extractor needs fresh cookies of www.douyin.com (not necessarily logged in). The file
is read once and never written back. Cookies go with the extractor's requests, by the usual
domain rules, and with the media download to the media URL's own host only.
"""

from __future__ import annotations

import functools
import gzip
import http.client
import io
import logging
import re
import threading
import urllib.parse
import urllib.request
import zlib
from pathlib import Path
from typing import Any, Mapping

from tiktalk.media.download import HostRateLimiter
from tiktalk.media.hosts import (HostPolicy, HostRefused, HostUnresolved, Resolve, system_resolve,
                                 vetted_connection)
from tiktalk.media.ids import DEFAULT_ID_PATTERN, validate_video_id
from tiktalk.media.sources import ResolveError, Source

log = logging.getLogger(__name__)

DOUYIN_VIDEO_URL = "https://www.douyin.com/video/{id}"
#: the best single file with video and audio that plain http(s) can fetch
DEFAULT_FORMAT = "best[protocol^=http]"
MAX_RESPONSE_BYTES = 32 * 2**20          # one extractor response (a page, an API answer)
MAX_REDIRECTS = 5
REDIRECTS = (301, 302, 303, 307, 308)
#: how a reason that asks for cookies continues
COOKIES_HINT = "set media.source.cookies to a cookies file of the site (config/README.md)"


def _yt_dlp():
    try:
        import yt_dlp
    except ImportError:  # pragma: no cover - pinned in pyproject.toml and envs/media.yaml
        raise ResolveError("the yt_dlp source needs the yt-dlp package (pip install yt-dlp)") from None
    return yt_dlp


# ----------------------------------------------------------------------------- the transport

class _CappedBody(io.RawIOBase):
    """A response body that raises once more than ``cap`` bytes came."""

    def __init__(self, resp: http.client.HTTPResponse, cap: int, url: str):
        self.resp, self.cap, self.url, self.seen = resp, cap, url, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        n = self.resp.readinto(buf)
        self.seen += n
        if self.seen > self.cap:
            raise OSError(f"response of {self.url[:120]} larger than {self.cap} bytes")
        return n

    def close(self) -> None:
        self.resp.close()
        super().close()


def _decoded(body: io.RawIOBase, encoding: str, cap: int):
    """The body as a readable file, decoded from its Content-Encoding (gzip, deflate)."""
    if encoding in ("", "identity"):
        return io.BufferedReader(body)
    if encoding in ("gzip", "x-gzip"):
        return gzip.GzipFile(fileobj=io.BufferedReader(body))
    if encoding == "deflate":
        raw = io.BufferedReader(body).read()
        try:
            data = zlib.decompressobj().decompress(raw, cap + 1)
        except zlib.error:
            data = zlib.decompressobj(-zlib.MAX_WBITS).decompress(raw, cap + 1)
        return io.BytesIO(data[:cap])
    raise OSError(f"unsupported Content-Encoding {encoding!r}")


def _redirect_method(method: str, status: int) -> str:
    """RFC 9110 15.4 as browsers do it: 303 turns anything but HEAD into GET, 301/302 a POST."""
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        return "GET"
    return method


def _body_bytes(data) -> bytes | None:
    if data is None or isinstance(data, bytes):
        return data
    if hasattr(data, "read"):
        return data.read()
    return b"".join(data)


def _make_vetted_rh():
    """The request handler class (built on first use: yt-dlp is imported only by this source)."""
    from yt_dlp.networking.common import RequestHandler, Response
    from yt_dlp.networking.exceptions import HTTPError, RequestError, TransportError

    class HostRefusedError(RequestError):
        """A hop to a host the policy refuses."""

    class VettedRH(RequestHandler):
        """yt-dlp's requests through :func:`~tiktalk.media.hosts.vetted_connection` (module doc)."""

        _SUPPORTED_URL_SCHEMES = ("http", "https")
        _SUPPORTED_PROXY_SCHEMES = ()
        _SUPPORTED_FEATURES = ()

        def __init__(self, *, policy: HostPolicy, limiter: HostRateLimiter,
                     resolve: Resolve = system_resolve, max_bytes: int = MAX_RESPONSE_BYTES, **kwargs):
            super().__init__(**kwargs)
            self.policy, self.limiter, self.resolve, self.max_bytes = policy, limiter, resolve, max_bytes

        def _check_extensions(self, extensions):
            super()._check_extensions(extensions)
            for key in ("cookiejar", "timeout", "legacy_ssl", "keep_header_casing"):
                extensions.pop(key, None)

        def _check_proxies(self, proxies):
            if any(proxies.values()):
                raise HostRefusedError("proxies are not supported: the host checks need direct "
                                       "connections (unset http(s)_proxy for the fetch)")

        def _send(self, request):
            url, method = request.url, request.method
            data = _body_bytes(request.data)
            headers = self._get_headers(request)
            headers.setdefault("Accept-Encoding", "identity")
            jar = self._get_cookiejar(request)
            timeout = self._calculate_timeout(request)
            for _ in range(MAX_REDIRECTS + 1):
                parts = urllib.parse.urlsplit(url)
                if parts.scheme.lower() not in self._SUPPORTED_URL_SCHEMES:
                    raise HostRefusedError(f"redirect to a non-http(s) URL: {url[:120]}")
                try:
                    conn, target = vetted_connection(url, self.policy, timeout, self.resolve)
                except HostRefused as exc:
                    raise HostRefusedError(str(exc)) from None
                except (HostUnresolved, ValueError) as exc:
                    raise TransportError(str(exc), cause=exc) from None
                self.limiter.wait(parts.hostname or "")
                ureq = urllib.request.Request(url, headers=headers, method=method)
                jar.add_cookie_header(ureq)          # the jar's cookies for this hop's domain
                sent = {k: v for k, v in ureq.header_items() if k.lower() != "host"}
                try:
                    conn.request(method, target, body=data, headers=sent)
                    resp = conn.getresponse()
                except (OSError, http.client.HTTPException) as exc:
                    conn.close()
                    raise TransportError(cause=exc) from None
                jar.extract_cookies(resp, ureq)
                location = resp.getheader("Location")
                if resp.status in REDIRECTS and location:
                    resp.read(64 * 1024)
                    conn.close()
                    url = urllib.parse.urljoin(url, location)
                    new = _redirect_method(method, resp.status)
                    if new != method:
                        method, data = new, None
                        for key in ("Content-Type", "Content-Length"):
                            headers.pop(key, None)
                    continue
                encoding = (resp.getheader("Content-Encoding") or "").strip().lower()
                try:
                    body = _decoded(_CappedBody(resp, self.max_bytes, url), encoding, self.max_bytes)
                except OSError as exc:
                    conn.close()
                    raise TransportError(cause=exc) from None
                reply = Response(body, url, dict(resp.getheaders()), resp.status, resp.reason)
                if resp.status >= 400:
                    raise HTTPError(reply)
                return reply
            raise TransportError(f"more than {MAX_REDIRECTS} redirects from {request.url[:120]}")

    return VettedRH


@functools.cache
def vetted_rh():
    """:class:`VettedRH` (one class per process)."""
    return _make_vetted_rh()


# ----------------------------------------------------------------------------- the resolver

class _Log:
    """yt-dlp's messages to this module's logger (its errors become the video's reason)."""

    def debug(self, msg: str) -> None:
        log.debug("%s", msg)

    def info(self, msg: str) -> None:
        log.debug("%s", msg)

    def warning(self, msg: str) -> None:
        log.info("yt-dlp: %s", msg)

    def error(self, msg: str) -> None:
        log.debug("%s", msg)


def _reason(exc: BaseException) -> str:
    """yt-dlp's error as one short line: no "ERROR: " prefix, no bug-report advice, no
    "(caused by ...)" repeating it."""
    text = " ".join(str(getattr(exc, "msg", None) or exc).split())
    text = re.sub(r"^ERROR:\s*", "", text)
    text = re.split(r";?\s*(?:please report this issue|Confirm you are on the latest version)", text)[0]
    text = re.sub(r"\s*\(caused by .*\)$", "", text)
    if "cookie" in text.lower():
        text += f" ({COOKIES_HINT})"
    return text[:300]


def load_cookies(path: str | Path):
    """A Netscape-format cookies file as yt-dlp's cookie jar; ValueError naming the file."""
    from yt_dlp.cookies import YoutubeDLCookieJar

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"media.source.cookies: no file {path}")
    jar = YoutubeDLCookieJar(str(path))
    try:
        jar.load()
    except Exception as exc:
        raise ValueError(f"media.source.cookies: {path} is not a Netscape cookies file "
                         f"({type(exc).__name__}: {exc})") from None
    return jar


class YtDlpResolver:
    """Resolve ids through yt-dlp's extractors (module doc). One ``YoutubeDL`` per thread
    (the shard's download workers), one cookie jar and one rate limiter for all of them.

    ``resolve`` (the name resolver) is replaceable in tests, as the downloader's is."""

    def __init__(self, url_template: str = DOUYIN_VIDEO_URL, *, cookies: str | Path | None = None,
                 min_interval_s: float = 0.0, timeout_s: float = 20.0, format: str = DEFAULT_FORMAT,
                 user_agent: str | None = None, id_pattern: str = DEFAULT_ID_PATTERN,
                 host_policy: HostPolicy = HostPolicy(), resolve: Resolve = system_resolve):
        if "{id}" not in url_template:
            raise ValueError(f"media.source.url_template must contain {{id}}, got {url_template!r}")
        _yt_dlp()
        self.url_template, self.format, self.id_pattern = url_template, format, id_pattern
        self.timeout_s, self.user_agent = float(timeout_s), user_agent
        self.host_policy, self.resolve_host = host_policy, resolve
        self.limiter = HostRateLimiter(min_interval_s)
        self.cookies = load_cookies(cookies) if cookies else None
        self._local = threading.local()

    def _ydl(self):
        ydl = getattr(self._local, "ydl", None)
        if ydl is None:
            from yt_dlp import YoutubeDL
            from yt_dlp.cookies import YoutubeDLCookieJar

            params: dict[str, Any] = {
                "quiet": True, "no_warnings": False, "noprogress": True, "logger": _Log(),
                "skip_download": True, "noplaylist": True, "format": self.format,
                "socket_timeout": self.timeout_s, "proxy": "", "cachedir": False,
                "color": {"stdout": "no_color", "stderr": "no_color"},
            }
            if self.user_agent:
                params["http_headers"] = {"User-Agent": self.user_agent}
            ydl = YoutubeDL(params)
            # the shared jar (read once, never saved back), then the only request handler
            ydl.__dict__["cookiejar"] = self.cookies if self.cookies is not None else YoutubeDLCookieJar()
            handler = functools.partial(vetted_rh(), policy=self.host_policy, limiter=self.limiter,
                                        resolve=self.resolve_host)
            ydl.__dict__["_request_director"] = ydl.build_request_director([handler])
            self._local.ydl = ydl
        return ydl

    def page_url(self, video_id: str) -> str:
        return self.url_template.replace("{id}", urllib.parse.quote(video_id, safe=""))

    def resolve(self, video_id: str) -> Source:
        validate_video_id(video_id, self.id_pattern)
        yt_dlp = _yt_dlp()
        ydl = self._ydl()
        try:
            info = ydl.extract_info(self.page_url(video_id), download=False)
        except (yt_dlp.utils.DownloadError, yt_dlp.utils.ExtractorError,
                yt_dlp.networking.exceptions.RequestError) as exc:
            # (a refused hop is a RequestError that no extractor turns into a warning)
            raise ResolveError(f"yt-dlp: {_reason(exc)}") from None
        if info is None:
            raise ResolveError("yt-dlp: no result")
        if info.get("_type") in ("playlist", "multi_video"):
            raise ResolveError("yt-dlp: the page is a playlist, not one video")
        if info.get("requested_formats"):
            raise ResolveError(f"yt-dlp: format {self.format!r} chose separate video and audio "
                               f"files; choose a single file")
        url, protocol = info.get("url"), str(info.get("protocol") or "")
        if not url or not protocol.startswith("http"):
            raise ResolveError(f"yt-dlp: no http(s) file to fetch (format protocol {protocol or 'unknown'!r})")
        headers = dict(info.get("http_headers") or {})
        headers.pop("Cookie", None)
        cookie = ydl.cookiejar.get_cookie_header(url)
        if cookie:
            headers["Cookie"] = cookie
        return Source(video_id, "url", url, headers=headers)


def resolver_from_config(cfg: Mapping, host_policy: HostPolicy, id_pattern: str) -> YtDlpResolver:
    """The resolver of a ``media.source`` block of kind ``yt_dlp``."""
    return YtDlpResolver(
        cfg.get("url_template") or DOUYIN_VIDEO_URL, cookies=cfg.get("cookies"),
        min_interval_s=float(cfg.get("min_interval_s", 0.0)), timeout_s=float(cfg.get("timeout_s", 20.0)),
        format=cfg.get("format") or DEFAULT_FORMAT, user_agent=cfg.get("user_agent"),
        id_pattern=id_pattern, host_policy=host_policy)
