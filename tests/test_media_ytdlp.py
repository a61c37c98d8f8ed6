"""The ``yt_dlp`` source, offline: yt-dlp's generic extractor against a loopback server, and its
Douyin extractor through a patched connection layer that answers with a recorded web-API
reply (never a real request). Every request yt-dlp makes goes through the host checks; the
bytes come through the project's downloader."""

from __future__ import annotations

import json
import threading

import pytest

from media_utils import loopback_server, redirect, serve_bytes, serve_status, write_video
from tiktalk.media.download import HostRateLimiter
from tiktalk.media.hosts import HostPolicy, parse_networks, vetted_connection
from tiktalk.media.resolvers import make_resolver, source_problems
from tiktalk.media.shard import fetch_shard
from tiktalk.media.sources import ResolveError
from tiktalk.media.tables import read_fetch

pytest.importorskip("yt_dlp")

LOOPBACK = HostPolicy(allowlist=parse_networks(["127.0.0.1/32"]))
DL = {"retries": 0, "read_timeout_s": 5, "private_allowlist": ["127.0.0.1/32"]}


@pytest.fixture(scope="module")
def video_bytes(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("yt") / "v.mp4", duration=1.0).read_bytes()


def resolver(template, **kw):
    from tiktalk.media.ytdlp import YtDlpResolver

    return YtDlpResolver(template, host_policy=kw.pop("host_policy", LOOPBACK), **kw)


# ----------------------------------------------------------------------------- generic extractor

def test_generic_extractor_resolves_and_the_shard_downloads(tmp_path, video_bytes):
    with loopback_server() as srv:
        srv.routes["/v/101"] = serve_bytes(video_bytes)
        srv.routes["/v/102"] = redirect("/v/101")
        srv.routes["/v/103"] = serve_status(404)
        src = resolver(srv.base + "/v/{id}").resolve("101")
        assert (src.kind, src.location) == ("url", srv.base + "/v/101")
        assert "User-Agent" in src.headers and "Cookie" not in src.headers
        source = {"kind": "yt_dlp", "url_template": srv.base + "/v/{id}"}
        rows = fetch_shard(["101", "102", "103"], source, DL, tmp_path / "videos", tmp_path / "fetch.tsv")
    by = {r["video_id"]: r for r in read_fetch(tmp_path / "fetch.tsv")}
    assert [by[v]["status"] for v in ("101", "102", "103")] == ["ok", "ok", "failed"]
    assert (tmp_path / "videos" / "101.mp4").read_bytes() == video_bytes
    assert by["103"]["reason"] == ("resolve: yt-dlp: [generic] 103: Unable to download webpage: "
                                   "HTTP Error 404: Not Found")
    assert [r["video_id"] for r in rows] == ["101", "102", "103"]


def test_every_hop_of_the_extractor_is_checked(video_bytes):
    """The page's host, and every redirect yt-dlp's extractor follows, pass the host policy:
    loopback needs the allowlist, the metadata service is refused whatever it says, and
    neither is retried or reached."""
    with loopback_server() as srv:
        srv.routes["/v/1"] = serve_bytes(video_bytes)
        srv.routes["/meta/1"] = redirect("http://169.254.169.254/latest/meta-data/")
        with pytest.raises(ResolveError, match="yt-dlp: refused host 127.0.0.1: loopback address "
                                               ".*media.download.private_allowlist"):
            resolver(srv.base + "/v/{id}", host_policy=HostPolicy()).resolve("1")
        assert srv.requests == []
        everything = HostPolicy(allow_private=True)
        with pytest.raises(ResolveError, match="refused host 169.254.169.254: link-local .*always refused"):
            resolver(srv.base + "/meta/{id}", host_policy=everything).resolve("1")
        assert srv.counts == {"/meta/1": 1}


def test_the_rate_limit_spaces_every_request_to_a_host(video_bytes):
    waits = []
    with loopback_server() as srv:
        srv.routes["/v/1"] = serve_bytes(video_bytes)
        srv.routes["/v/2"] = serve_bytes(video_bytes)
        r = resolver(srv.base + "/v/{id}", min_interval_s=2.0)
        r.limiter = HostRateLimiter(2.0, clock=lambda: 0.0, sleep=waits.append)   # time stands still
        for vid in ("1", "2"):
            r.resolve(vid)
        n = len(srv.requests)
    assert n >= 2 and waits == [2.0 * k for k in range(1, n)]


def test_threads_have_their_own_youtubedl(video_bytes):
    with loopback_server() as srv:
        srv.routes["/v/1"] = serve_bytes(video_bytes)
        r = resolver(srv.base + "/v/{id}")
        out = []
        threads = [threading.Thread(target=lambda: out.append((r.resolve("1").location, r._ydl())))
                   for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert [loc for loc, _ in out] == [srv.base + "/v/1"] * 3
    assert len({id(y) for _, y in out}) == 3


# ----------------------------------------------------------------------------- Douyin extractor

AWEME_ID = "7106716282393677087"


def aweme_detail(media_url: str) -> dict:
    """The web detail API's answer for one video, trimmed to the fields the extractor reads
    (the shape of a reply of www.douyin.com/aweme/v1/web/aweme/detail/)."""
    return {"status_code": 0, "aweme_detail": {
        "aweme_id": AWEME_ID, "desc": "一起看海", "create_time": 1654819200,
        "author": {"uid": "110403406559", "unique_id": "demo", "nickname": "demo",
                   "sec_uid": "MS4wLjABAAAA"},
        "statistics": {"play_count": 0, "digg_count": 12, "share_count": 1, "comment_count": 3,
                       "collect_count": 2},
        "music": {"title": "original sound", "author": "demo"},
        "video": {"width": 720, "height": 1280, "duration": 1000,
                  "play_addr": {"uri": "v0200fg10000", "url_list": [media_url], "width": 720,
                                "height": 1280, "data_size": 12345,
                                "url_key": "v0200fg10000_h264_720p_1000000"},
                  "cover": {"url_list": [media_url.rsplit("/", 1)[0] + "/cover.jpg"]}},
    }}


def cookies_file(path, **cookies):
    lines = ["# Netscape HTTP Cookie File"]
    lines += [f".douyin.com\tTRUE\t/\tFALSE\t2145916800\t{k}\t{v}" for k, v in cookies.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def douyin_via_loopback(monkeypatch):
    """The connection layer, patched: a request for www.douyin.com goes to the loopback server
    (same path and query, plain http) after the real host check of the loopback address; any
    other host is connected to as usual (the media URL of the recorded answer is loopback)."""
    import tiktalk.media.ytdlp as ytdlp

    state = {"server": None, "hosts": []}

    def connect(url, policy, timeout, resolve):
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        state["hosts"].append(parts.hostname)
        if parts.hostname == "www.douyin.com":
            url = state["server"].base + parts.path + (f"?{parts.query}" if parts.query else "")
            policy = LOOPBACK
        return vetted_connection(url, policy, timeout, resolve)

    monkeypatch.setattr(ytdlp, "vetted_connection", connect)
    return state


def test_douyin_extractor_with_cookies(tmp_path, video_bytes, douyin_via_loopback):
    seen = {}
    with loopback_server() as srv:
        douyin_via_loopback["server"] = srv
        media = srv.base + f"/media/{AWEME_ID}.mp4"

        def detail(h, n):
            seen["cookie"], seen["path"] = h.headers.get("Cookie"), h.path
            serve_status(200, json.dumps(aweme_detail(media)).encode(), "application/json")(h, n)

        def media_route(h, n):
            seen["media_cookie"] = h.headers.get("Cookie")
            serve_bytes(video_bytes)(h, n)

        srv.routes["/aweme/v1/web/aweme/detail/"] = detail
        srv.routes[f"/media/{AWEME_ID}.mp4"] = media_route
        jar = cookies_file(tmp_path / "cookies.txt", s_v_web_id="verify_abc", sid_tt="sess42")
        source = {"kind": "yt_dlp", "cookies": str(jar), "min_interval_s": 0}
        src = make_resolver(source, LOOPBACK).resolve(AWEME_ID)
        assert src.location == media
        assert src.headers["Cookie"] == "sid_tt=sess42"     # what the extractor sets for the media host
        fetch_shard([AWEME_ID], source, DL, tmp_path / "videos", tmp_path / "fetch.tsv")
    assert douyin_via_loopback["hosts"] == ["www.douyin.com"] * 2    # one request per resolve
    assert seen["path"] == f"/aweme/v1/web/aweme/detail/?aweme_id={AWEME_ID}"
    assert "s_v_web_id=verify_abc" in seen["cookie"] and "sid_tt=sess42" in seen["cookie"]
    assert seen["media_cookie"] == "sid_tt=sess42"
    assert [r["status"] for r in read_fetch(tmp_path / "fetch.tsv")] == ["ok"]
    assert (tmp_path / "videos" / f"{AWEME_ID}.mp4").read_bytes() == video_bytes
    assert "verify_abc" in jar.read_text()                   # the file is read, never rewritten


def test_douyin_without_fresh_cookies_says_so(tmp_path, douyin_via_loopback):
    with loopback_server() as srv:
        douyin_via_loopback["server"] = srv
        srv.routes["/aweme/v1/web/aweme/detail/"] = serve_status(200, b"", "application/json")
        with pytest.raises(ResolveError, match="yt-dlp: .*Fresh cookies .*needed .*media.source.cookies"):
            make_resolver({"kind": "yt_dlp"}, LOOPBACK).resolve(AWEME_ID)


def test_a_missing_cookies_file_is_named(tmp_path):
    source = {"kind": "yt_dlp", "cookies": str(tmp_path / "nope.txt")}
    assert source_problems(source) == [f"media.source.cookies: no file {tmp_path / 'nope.txt'} "
                                       "(export the site's cookies, config/README.md)"]
    with pytest.raises(ValueError, match="media.source.cookies: no file"):
        make_resolver(source)
    (tmp_path / "bad.txt").write_text("not a cookie file\n")
    with pytest.raises(ValueError, match="bad.txt is not a Netscape cookies file"):
        make_resolver({"kind": "yt_dlp", "cookies": str(tmp_path / "bad.txt")})
