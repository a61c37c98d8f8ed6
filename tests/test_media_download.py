"""Downloader against a loopback HTTP server: errors, retries, stalls, resume, HTML, caps."""

from __future__ import annotations

import random
import time

import pytest

from media_utils import (drop_midway, first_then, loopback_server, redirect, serve_bytes,
                         serve_status, stall, write_video)
from tiktalk.media.download import DownloadConfig, DownloadError, HostRateLimiter, download


@pytest.fixture(scope="module")
def video_bytes(tmp_path_factory):
    p = write_video(tmp_path_factory.mktemp("dl") / "v.mp4", duration=1.0, width=64, height=48)
    return p.read_bytes()


def fast_cfg(**kw):
    base = dict(connect_timeout_s=2, read_timeout_s=0.5, total_timeout_s=20, retries=3,
                backoff_base_s=0.01, backoff_max_s=0.05, chunk_bytes=4096)
    base.update(kw)
    return DownloadConfig(**base)


def test_ok_and_redirect(tmp_path, video_bytes):
    with loopback_server() as srv:
        srv.routes["/v.mp4"] = serve_bytes(video_bytes)
        srv.routes["/r"] = redirect("/v.mp4")
        info = download(srv.base + "/r", tmp_path / "a.mp4", fast_cfg())
    assert (tmp_path / "a.mp4").read_bytes() == video_bytes
    assert info["attempts"] == 1 and info["bytes"] == len(video_bytes)
    assert not (tmp_path / "a.mp4.part").exists()


def test_404_fails_without_retry(tmp_path):
    with loopback_server() as srv:
        with pytest.raises(DownloadError, match="HTTP 404"):
            download(srv.base + "/missing.mp4", tmp_path / "a.mp4", fast_cfg())
        assert srv.counts["/missing.mp4"] == 1
    assert not (tmp_path / "a.mp4").exists()


def test_500_then_200_retries(tmp_path, video_bytes):
    sleeps = []
    with loopback_server() as srv:
        srv.routes["/v.mp4"] = first_then(serve_status(500), serve_bytes(video_bytes), n_first=2)
        info = download(srv.base + "/v.mp4", tmp_path / "a.mp4", fast_cfg(backoff_base_s=1.0, backoff_max_s=10),
                        sleep=sleeps.append, rng=random.Random(0))
    assert info["attempts"] == 3
    assert (tmp_path / "a.mp4").read_bytes() == video_bytes
    # exponential backoff with jitter in [0.5, 1] x base * 2**k
    assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0


def test_persistent_500_gives_up_with_reason(tmp_path):
    with loopback_server() as srv:
        srv.routes["/v.mp4"] = serve_status(503)
        with pytest.raises(DownloadError, match=r"HTTP 503 \(gave up after 4 attempts\)"):
            download(srv.base + "/v.mp4", tmp_path / "a.mp4", fast_cfg())


def test_dropped_connection_resumes_with_range(tmp_path, video_bytes):
    with loopback_server() as srv:
        srv.routes["/v.mp4"] = first_then(drop_midway(video_bytes, 0.4), serve_bytes(video_bytes))
        info = download(srv.base + "/v.mp4", tmp_path / "a.mp4", fast_cfg())
        ranges = [r for _, r in srv.requests]
    assert (tmp_path / "a.mp4").read_bytes() == video_bytes
    assert info["resumed"] and info["attempts"] == 2
    assert ranges[0] is None and ranges[1] == f"bytes={int(len(video_bytes) * 0.4)}-"


def test_stall_times_out_then_resumes(tmp_path, video_bytes):
    with loopback_server() as srv:
        srv.routes["/v.mp4"] = first_then(stall(video_bytes, 3.0), serve_bytes(video_bytes))
        t0 = time.monotonic()
        info = download(srv.base + "/v.mp4", tmp_path / "a.mp4", fast_cfg(read_timeout_s=0.3))
        assert time.monotonic() - t0 < 2.5
    assert (tmp_path / "a.mp4").read_bytes() == video_bytes
    assert info["attempts"] == 2


def test_stall_forever_hits_total_cap(tmp_path, video_bytes):
    with loopback_server() as srv:
        srv.routes["/v.mp4"] = stall(video_bytes, 3.0, fraction=0.0)
        t0 = time.monotonic()
        with pytest.raises(DownloadError, match="timed out|time cap"):
            download(srv.base + "/v.mp4", tmp_path / "a.mp4",
                     fast_cfg(read_timeout_s=0.2, total_timeout_s=1.0, retries=10, backoff_base_s=0.1))
        assert time.monotonic() - t0 < 2.0


def test_html_page_is_a_failure(tmp_path):
    page = b"<!DOCTYPE html><html><body>Access denied</body></html>"
    with loopback_server() as srv:
        srv.routes["/h"] = serve_status(200, page, "text/html; charset=utf-8")
        srv.routes["/h2"] = serve_status(200, page, "video/mp4")  # lying content type
        with pytest.raises(DownloadError, match="HTML"):
            download(srv.base + "/h", tmp_path / "a.mp4", fast_cfg())
        with pytest.raises(DownloadError, match="not a media file"):
            download(srv.base + "/h2", tmp_path / "b.mp4", fast_cfg())
    assert not list(tmp_path.iterdir())


def test_truncated_body_fails_validation(tmp_path, video_bytes):
    with loopback_server() as srv:
        srv.routes["/t.mp4"] = serve_bytes(video_bytes[: len(video_bytes) // 3])
        with pytest.raises(DownloadError, match="not a readable media file|no decodable"):
            download(srv.base + "/t.mp4", tmp_path / "a.mp4", fast_cfg())
    assert not (tmp_path / "a.mp4").exists()


def test_max_bytes_and_scheme(tmp_path, video_bytes):
    with loopback_server() as srv:
        srv.routes["/v.mp4"] = serve_bytes(video_bytes)
        with pytest.raises(DownloadError, match="too large"):
            download(srv.base + "/v.mp4", tmp_path / "a.mp4", fast_cfg(max_bytes=1000))
    with pytest.raises(DownloadError, match="scheme"):
        download("ftp://127.0.0.1/x.mp4", tmp_path / "a.mp4", fast_cfg())


def test_complete_part_file_is_finished_by_416(tmp_path, video_bytes):
    (tmp_path / "a.mp4.part").write_bytes(video_bytes)
    with loopback_server() as srv:
        srv.routes["/v.mp4"] = serve_bytes(video_bytes)
        download(srv.base + "/v.mp4", tmp_path / "a.mp4", fast_cfg())
        assert srv.requests[0][1] == f"bytes={len(video_bytes)}-"
    assert (tmp_path / "a.mp4").read_bytes() == video_bytes


def test_host_rate_limiter():
    now = [0.0]
    slept = []

    def sleep(s):
        slept.append(s)
        now[0] += s

    lim = HostRateLimiter(0.5, clock=lambda: now[0], sleep=sleep)
    assert lim.wait("a") == 0.0
    assert lim.wait("a") == pytest.approx(0.5)
    assert lim.wait("b") == 0.0          # per host
    assert lim.wait("a") == pytest.approx(0.5)
    assert slept == [pytest.approx(0.5), pytest.approx(0.5)]
