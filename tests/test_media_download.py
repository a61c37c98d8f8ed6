"""Downloader against a loopback HTTP server: errors, retries, stalls, resume, HTML, caps,
refused hosts (loopback / link-local / private, every redirect hop) and truncated files."""

from __future__ import annotations

import random
import time

import pytest

from media_utils import (drop_midway, etag_of, first_then, loopback_server, redirect, serve_bytes,
                         serve_status, stall, write_video)
from tiktalk.media.download import DownloadConfig, DownloadError, HostRateLimiter, download


@pytest.fixture(scope="module")
def video_bytes(tmp_path_factory):
    p = write_video(tmp_path_factory.mktemp("dl") / "v.mp4", duration=1.0, width=64, height=48)
    return p.read_bytes()


def fast_cfg(**kw):
    # the test server is on 127.0.0.1: loopback must be allowed explicitly
    base = dict(connect_timeout_s=2, read_timeout_s=0.5, total_timeout_s=20, retries=3,
                backoff_base_s=0.01, backoff_max_s=0.05, chunk_bytes=4096, allow_private_hosts=True)
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


def test_resume_only_onto_the_same_file(tmp_path, video_bytes):
    """The file changes on the server between the dropped attempt and the resume: the resume
    carries If-Range with the first response's ETag, so the server sends the whole new file
    (not the rest of it behind the old bytes)."""
    other = write_video(tmp_path / "other.mp4", duration=1.0, width=64, height=48, tone_hz=880).read_bytes()
    assert other != video_bytes
    with loopback_server() as srv:
        srv.routes["/v.mp4"] = first_then(drop_midway(video_bytes, 0.4), serve_bytes(other))
        info = download(srv.base + "/v.mp4", tmp_path / "a.mp4", fast_cfg())
        assert srv.if_ranges[1] == etag_of(video_bytes)
    assert (tmp_path / "a.mp4").read_bytes() == other
    assert info["attempts"] == 2
    # a server that ignores If-Range sends the rest of the new file: its ETag gives it away
    with loopback_server() as srv:
        srv.routes["/v.mp4"] = first_then(drop_midway(video_bytes, 0.4),
                                          serve_bytes(other, honour_if_range=False), n_first=1)
        download(srv.base + "/v.mp4", tmp_path / "b.mp4", fast_cfg())
        assert [r for _, r in srv.requests][1:] == [f"bytes={int(len(video_bytes) * 0.4)}-", None]
    assert (tmp_path / "b.mp4").read_bytes() == other
    assert not list(tmp_path.glob("*.part*"))


def test_a_partial_file_without_validator_starts_over(tmp_path, video_bytes):
    """A .part left by an earlier run (no validator kept), or from a server that sent neither
    ETag nor Last-Modified, is never resumed with a bare Range."""
    other = write_video(tmp_path / "other.mp4", duration=1.0, width=64, height=48, tone_hz=880).read_bytes()
    (tmp_path / "a.mp4.part").write_bytes(video_bytes[: len(video_bytes) // 2])
    with loopback_server() as srv:
        srv.routes["/v.mp4"] = serve_bytes(other)
        download(srv.base + "/v.mp4", tmp_path / "a.mp4", fast_cfg())
        assert srv.requests[0][1] is None                      # no Range
    assert (tmp_path / "a.mp4").read_bytes() == other
    with loopback_server() as srv:                              # no validator from the server
        srv.routes["/v.mp4"] = first_then(drop_midway(video_bytes, 0.4, etag=None),
                                          serve_bytes(video_bytes, etag=None))
        info = download(srv.base + "/v.mp4", tmp_path / "c.mp4", fast_cfg())
        assert [r for _, r in srv.requests] == [None, None] and not info["resumed"]
    assert (tmp_path / "c.mp4").read_bytes() == video_bytes


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
    (tmp_path / "a.mp4.part.validator").write_text(etag_of(video_bytes) + "\n")
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


# ----------------------------------------------------------------------------- refused hosts

def test_loopback_refused_by_default_and_allowed_by_the_switch(tmp_path, video_bytes):
    with loopback_server() as srv:
        srv.routes["/v.mp4"] = serve_bytes(video_bytes)
        with pytest.raises(DownloadError, match="refused host 127.0.0.1: loopback address 127.0.0.1; "
                                                "list its network in media.download.private_allowlist "
                                                r"\(e.g. 127.0.0.1/32\)"):
            download(srv.base + "/v.mp4", tmp_path / "a.mp4", fast_cfg(allow_private_hosts=False))
        assert srv.requests == []                      # refused before any connection
        download(srv.base + "/v.mp4", tmp_path / "a.mp4", fast_cfg(allow_private_hosts=True))
    assert (tmp_path / "a.mp4").read_bytes() == video_bytes


def test_redirect_from_an_allowed_to_a_refused_host(tmp_path, video_bytes):
    """127.0.0.1 is allowed by network (private_allowlist); its redirects to another loopback
    address and to the link-local metadata service are refused, never connected to."""
    cfg = fast_cfg(allow_private_hosts=False, private_allowlist=("127.0.0.1/32",))
    with loopback_server() as srv:
        srv.routes["/v.mp4"] = serve_bytes(video_bytes)
        srv.routes["/ok"] = redirect("/v.mp4")
        srv.routes["/lo2"] = redirect(srv.base.replace("127.0.0.1", "127.0.0.2") + "/v.mp4")
        srv.routes["/meta"] = redirect("http://169.254.169.254/latest/meta-data/")
        download(srv.base + "/ok", tmp_path / "a.mp4", cfg)        # same allowed host: followed
        assert (tmp_path / "a.mp4").read_bytes() == video_bytes
        with pytest.raises(DownloadError, match="redirect 1: refused host 127.0.0.2: loopback"):
            download(srv.base + "/lo2", tmp_path / "b.mp4", cfg)
        with pytest.raises(DownloadError, match="redirect 1: refused host 169.254.169.254: link-local"):
            download(srv.base + "/meta", tmp_path / "c.mp4", cfg)
        assert [p for p, _ in srv.requests].count("/v.mp4") == 1   # only the allowed hop fetched
        # with the switch on, the redirect to 127.0.0.2 is followed (the server listens on
        # 127.0.0.1 only, so that hop's connection fails: it was attempted)
        with pytest.raises(DownloadError, match="connection error"):
            download(srv.base + "/lo2", tmp_path / "d.mp4", fast_cfg(retries=0))
    assert not (tmp_path / "b.mp4").exists() and not (tmp_path / "c.mp4").exists()


def test_link_local_and_metadata_refused_whatever_the_switch_says(tmp_path, video_bytes):
    """With the blanket switch on (or the network in the allowlist), a redirect to the cloud
    metadata service is still refused at once: never connected to, never retried."""
    with loopback_server() as srv:
        srv.routes["/meta"] = redirect("http://169.254.169.254/latest/meta-data/")
        for cfg in (fast_cfg(allow_private_hosts=True),
                    fast_cfg(allow_private_hosts=False,
                             private_allowlist=("127.0.0.1/32", "169.254.0.0/16"))):
            srv.counts.clear()
            with pytest.raises(DownloadError, match="redirect 1: refused host 169.254.169.254: "
                                                    r"link-local address 169.254.169.254 \(always refused"):
                download(srv.base + "/meta", tmp_path / "a.mp4", cfg)
            assert srv.counts["/meta"] == 1                   # not retried
    assert not (tmp_path / "a.mp4").exists() and not (tmp_path / "a.mp4.part").exists()


@pytest.mark.parametrize("address", ["169.254.169.254", "169.254.0.1", "fe80::1", "fd00:ec2::254",
                                     "::ffff:169.254.169.254", "100.100.100.200"])
def test_always_refused_addresses(address):
    import ipaddress

    from tiktalk.media.hosts import HostPolicy, HostRefused, vet_host

    everything = (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
    for policy in (HostPolicy(), HostPolicy(allow_private=True), HostPolicy(allowlist=everything)):
        with pytest.raises(HostRefused, match="always refused"):
            vet_host(address, 80, policy, lambda host, port: [host])
    # their neighbours are ordinary non-public addresses: the switch opens them
    assert vet_host("fd00:ec2::253", 80, HostPolicy(allow_private=True), lambda h, p: [h])


@pytest.mark.parametrize("url, kind", [
    ("http://localhost/v.mp4", "loopback"),
    ("http://2130706433/v.mp4", "loopback"),            # 127.0.0.1 as a decimal number
    ("http://[::1]/v.mp4", "loopback"),
    ("http://[::ffff:127.0.0.1]/v.mp4", "loopback"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://10.1.2.3/v.mp4", "private"),
    ("http://192.168.0.10/v.mp4", "private"),
    ("http://0.0.0.0/v.mp4", "unspecified"),
])
def test_hostile_urls_refused(tmp_path, url, kind):
    with pytest.raises(DownloadError, match=f"refused host .*{kind}"):
        download(url, tmp_path / "a.mp4", fast_cfg(allow_private_hosts=False))


def test_a_name_resolving_to_mixed_addresses_is_refused(tmp_path):
    """DNS rebinding: one public and one private answer is refused; the check uses the
    resolver it is given and connects only to an address it checked."""
    from tiktalk.media.hosts import HostPolicy, HostRefused, vet_host

    answers = {"cdn.example": ["93.184.216.34", "10.0.0.5"], "pub.example": ["93.184.216.34"]}
    resolve = lambda host, port: answers[host]  # noqa: E731
    with pytest.raises(HostRefused, match="cdn.example \\(10.0.0.5\\): private"):
        vet_host("cdn.example", 80, HostPolicy(), resolve)
    assert vet_host("pub.example", 80, HostPolicy(), resolve) == ["93.184.216.34"]
    with pytest.raises(DownloadError, match="private"):
        download("http://cdn.example/v.mp4", tmp_path / "a.mp4", fast_cfg(allow_private_hosts=False),
                 resolve=resolve)


# ----------------------------------------------------------------------------- truncated files

def test_a_compressed_body_is_named(tmp_path, video_bytes):
    """A server that gzips the video although the request accepted identity only, and a file
    that is gzip data: the reason names the encoding (not 'not a readable media file')."""
    import gzip

    from tiktalk.media.download import validate_media

    packed = gzip.compress(video_bytes)

    def gzipped(h, n):
        h.send_response(200)
        h.send_header("Content-Type", "video/mp4")
        h.send_header("Content-Encoding", "gzip")
        h.send_header("Content-Length", str(len(packed)))
        h.end_headers()
        h.wfile.write(packed)

    with loopback_server() as srv:
        srv.routes["/v.mp4"] = gzipped
        with pytest.raises(DownloadError, match=r"gzip-encoded body \(Content-Encoding: gzip\)"):
            download(srv.base + "/v.mp4", tmp_path / "a.mp4", fast_cfg())
    (tmp_path / "b.mp4").write_bytes(packed)
    with pytest.raises(DownloadError, match=r"not a media file: gzip-compressed data \(\d+ bytes\)"):
        validate_media(tmp_path / "b.mp4")


@pytest.mark.parametrize("codec", ["png", "mjpeg"])
def test_a_still_image_is_not_a_video(tmp_path, codec):
    """A picture named .mp4 opens as a one-frame video stream: it is refused, and so is a
    one-frame clip; two frames with a duration are a video."""
    from media_utils import write_image
    from tiktalk.media.download import validate_media

    with pytest.raises(DownloadError, match="a still image, not a video .*1 decoded frame"):
        validate_media(write_image(tmp_path / "still.mp4", codec))
    with pytest.raises(DownloadError, match="a still image"):
        validate_media(write_video(tmp_path / "one.mp4", n_frames=1, audio=False))
    assert validate_media(write_video(tmp_path / "two.mp4", n_frames=2, duration=0.2, audio=False))


def test_truncated_file_with_index_first_fails_validation(tmp_path):
    from media_utils import faststart, truncate_file
    from tiktalk.media.download import validate_media

    full = faststart(write_video(tmp_path / "src.mp4", duration=10.0, fps=10), tmp_path / "fs.mp4")
    info = validate_media(full)
    assert info["decoded_s"] == pytest.approx(10.0, abs=0.11)
    cut = truncate_file(full, tmp_path / "cut.mp4", 0.3)
    with pytest.raises(DownloadError, match=r"truncated: file holds \d\.\d s of 10\.0 s"):
        validate_media(cut)
    assert validate_media(cut, min_complete_fraction=0.0)["decoded_s"] < 5.0   # check disabled
    with loopback_server() as srv:
        srv.routes["/cut.mp4"] = serve_bytes(cut.read_bytes())
        with pytest.raises(DownloadError, match="truncated"):
            download(srv.base + "/cut.mp4", tmp_path / "a.mp4", fast_cfg())
    assert not (tmp_path / "a.mp4").exists() and not (tmp_path / "a.mp4.part").exists()
