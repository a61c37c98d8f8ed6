"""Video id validation and the three resolvers (Douyin API against a loopback server)."""

from __future__ import annotations

import pytest

import ipaddress

from media_utils import loopback_server, redirect, serve_json, serve_status
from tiktalk.media.ids import InvalidVideoId, validate_video_id
from tiktalk.media.hosts import HostPolicy
from tiktalk.media.resolvers import make_resolver
from tiktalk.media.sources import CsvResolver, DouyinApiResolver, LocalDirResolver, ResolveError

LOCAL = HostPolicy(allow_private=True)      # the test server is on 127.0.0.1


@pytest.mark.parametrize("bad", ["", "../etc", "a/b", "a\\b", "..", "a..b", "-rf", ".hidden", "a\x00b",
                                 "a b", 7, None])
def test_bad_ids_rejected(bad):
    with pytest.raises(InvalidVideoId):
        validate_video_id(bad)


def test_good_ids_and_custom_pattern():
    assert validate_video_id("7106716282393677087") == "7106716282393677087"
    assert validate_video_id("demo_red-circle.1") == "demo_red-circle.1"
    with pytest.raises(InvalidVideoId, match="pattern"):
        validate_video_id("abc", r"[0-9]+")
    with pytest.raises(InvalidVideoId, match=r"\.\."):   # never, even if the pattern allows it
        validate_video_id("1..2", r".*")


def test_local_dir_resolver(tmp_path):
    (tmp_path / "v1.mp4").write_bytes(b"x")
    (tmp_path / "v2.webm").write_bytes(b"x")
    r = LocalDirResolver(tmp_path)
    assert r.resolve("v1").location == str((tmp_path / "v1.mp4").resolve())
    assert r.resolve("v2").location.endswith("v2.webm")
    with pytest.raises(ResolveError, match="no file"):
        r.resolve("v3")
    with pytest.raises(InvalidVideoId):
        r.resolve("../v1")


def test_local_dir_resolver_rejects_symlink_escape(tmp_path):
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(b"x")
    root = tmp_path / "root"
    root.mkdir()
    (root / "v.mp4").symlink_to(outside)
    with pytest.raises(ResolveError, match="outside"):
        LocalDirResolver(root).resolve("v")


def test_csv_resolver(tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    (media / "a.mp4").write_bytes(b"x")
    (tmp_path / "secret.mp4").write_bytes(b"x")
    csv_path = tmp_path / "urls.csv"
    csv_path.write_text(
        "id,url\n"
        f"a,{(media / 'a.mp4').as_uri()}\n"
        f"b,{(tmp_path / 'secret.mp4').as_uri()}\n"
        "c,https://cdn.example.com/c.mp4\n"
        "d,ftp://example.com/d.mp4\n"
        f"e,{(media / 'nope.mp4').as_uri()}\n")
    r = CsvResolver(csv_path, file_root=media)
    assert r.resolve("a").kind == "file"
    with pytest.raises(ResolveError, match="outside the allowed root"):
        r.resolve("b")
    assert r.resolve("c").location == "https://cdn.example.com/c.mp4"
    with pytest.raises(ResolveError, match="scheme 'ftp' not allowed"):
        r.resolve("d")
    with pytest.raises(ResolveError, match="not found"):
        r.resolve("e")
    with pytest.raises(ResolveError, match="not in urls.csv"):
        r.resolve("zzz")
    https_only = CsvResolver(csv_path, allowed_schemes=("https",), file_root=media)
    with pytest.raises(ResolveError, match="'file' not allowed"):
        https_only.resolve("a")
    no_root = CsvResolver(csv_path)
    with pytest.raises(ResolveError, match="no file_root"):
        no_root.resolve("a")


def test_csv_resolver_bad_header(tmp_path):
    p = tmp_path / "u.csv"
    p.write_text("video,link\nx,y\n")
    with pytest.raises(ValueError, match="id,url"):
        CsvResolver(p)


def test_douyin_api_resolver_against_loopback():
    item = {"item_list": [{"video": {"play_addr": {"url_list": [
        "https://aweme.snssdk.com/aweme/v1/playwm/?video_id=v0200abc&ratio=720p"]}}}]}
    with loopback_server() as srv:
        srv.routes["/web/api/v2/aweme/iteminfo/"] = serve_json(item)
        srv.routes["/empty/"] = serve_json({"item_list": []})
        srv.routes["/broken/"] = serve_status(200, b"<html>oops</html>", "text/html")
        srv.routes["/err/"] = serve_status(500)
        r = DouyinApiResolver(api_url=srv.base + "/web/api/v2/aweme/iteminfo/", timeout_s=2,
                              id_pattern=r"^[0-9]{1,32}$", host_policy=LOCAL)
        src = r.resolve("7106716282393677087")
        assert src.kind == "url"
        assert src.location == "https://aweme.snssdk.com/aweme/v1/play/?video_id=v0200abc&ratio=720p"
        assert srv.requests[-1][0] == "/web/api/v2/aweme/iteminfo/?item_ids=7106716282393677087"
        with pytest.raises(ResolveError, match="empty item_list"):
            DouyinApiResolver(api_url=srv.base + "/empty/", timeout_s=2, host_policy=LOCAL).resolve("1")
        with pytest.raises(ResolveError, match="not JSON"):
            DouyinApiResolver(api_url=srv.base + "/broken/", timeout_s=2, host_policy=LOCAL).resolve("1")
        with pytest.raises(ResolveError, match="HTTP 500"):
            DouyinApiResolver(api_url=srv.base + "/err/", timeout_s=2, host_policy=LOCAL).resolve("1")
        with pytest.raises(InvalidVideoId):
            r.resolve("abc")  # this resolver was given Douyin's numeric pattern


def test_douyin_api_on_a_private_host_is_refused_unless_allowed():
    item = {"item_list": [{"video": {"play_addr": {"url_list": ["https://example.com/v.mp4"]}}}]}
    with loopback_server() as srv:
        srv.routes["/api/"] = serve_json(item)
        srv.routes["/hop/"] = redirect(srv.base + "/api/")
        with pytest.raises(ResolveError, match="loopback address 127.0.0.1"):
            DouyinApiResolver(api_url=srv.base + "/api/", timeout_s=2).resolve("1")
        assert srv.requests == []                        # refused before connecting
        allowed = DouyinApiResolver(api_url=srv.base + "/hop/", timeout_s=2, host_policy=LOCAL)
        assert allowed.resolve("1").location == "https://example.com/v.mp4"
        # the API host allowed by network, the redirect to another loopback address refused
        only_first = HostPolicy(allowlist=(ipaddress.ip_network("127.0.0.1/32"),))
        srv.routes["/away/"] = redirect(srv.base.replace("127.0.0.1", "127.0.0.2") + "/api/")
        with pytest.raises(ResolveError, match="redirect to refused host 127.0.0.2"):
            DouyinApiResolver(api_url=srv.base + "/away/", timeout_s=2, host_policy=only_first).resolve("1")
        assert [p for p, _ in srv.requests].count("/away/?item_ids=1") == 1


def test_make_resolver(tmp_path):
    (tmp_path / "u.csv").write_text("id,url\n")
    assert isinstance(make_resolver({"kind": "local", "root": str(tmp_path)}), LocalDirResolver)
    assert isinstance(make_resolver({"kind": "local_dir", "root": str(tmp_path)}), LocalDirResolver)
    assert isinstance(make_resolver({"kind": "csv", "csv": str(tmp_path / "u.csv")}), CsvResolver)
    d = make_resolver({"kind": "douyin", "api_url": "http://127.0.0.1:9/x"})
    assert isinstance(d, DouyinApiResolver) and d.api_url == "http://127.0.0.1:9/x"
    with pytest.raises(ValueError, match="unknown resolver kind"):
        make_resolver({"kind": "youtube"})
    with pytest.raises(ValueError, match="needs 'root'"):
        make_resolver({"kind": "local"})


def test_douyin_api_answering_nothing_stops_the_shard_in_one_line(tmp_path):
    """The endpoint answers empty results for every id: the first ``stop_after_empty`` ids of
    the shard are asked one by one, then the shard stops with one line naming the sources that
    work; no fetch table is written. One real item among them, or the check off: it goes on."""
    from tiktalk.media.shard import fetch_shard
    from tiktalk.media.sources import SourceUnavailable

    dl = {"retries": 0, "private_allowlist": ["127.0.0.1/32"]}
    ids = [str(i) for i in range(1, 7)]
    with loopback_server() as srv:
        srv.routes["/empty/"] = serve_json({"status_code": 0, "item_list": []})
        srv.routes["/nothing/"] = serve_status(200, b"", "application/json")
        for route in ("/empty/", "/nothing/"):
            source = {"kind": "douyin_api", "api_url": srv.base + route, "stop_after_empty": 3}
            with pytest.raises(SourceUnavailable) as exc:
                fetch_shard(ids, source, dl, tmp_path / "v", tmp_path / "fetch.tsv")
            line = str(exc.value)
            assert "\n" not in line and line.startswith("media.source douyin_api: the iteminfo endpoint")
            assert "answered nothing for the first 3 ids" in line
            assert "use the yt_dlp, csv or local_dir sources instead" in line
            assert srv.counts[route] == 3 and not (tmp_path / "fetch.tsv").exists()
        source = {"kind": "douyin_api", "api_url": srv.base + "/empty/", "stop_after_empty": 0}
        rows = fetch_shard(ids, source, dl, tmp_path / "v", tmp_path / "fetch.tsv")
        assert [r["reason"] for r in rows] == ["resolve: iteminfo API: empty item_list (video removed "
                                               "or private, or the endpoint answers nothing)"] * 6
        # one id of the first three resolves: the endpoint works, the shard goes on
        item = {"item_list": [{"video": {"play_addr": {"url_list": [srv.base + "/v.mp4"]}}}]}
        srv.routes["/some/"] = lambda h, n: serve_json(item if n == 2 else {"item_list": []})(h, n)
        source = {"kind": "douyin_api", "api_url": srv.base + "/some/", "stop_after_empty": 3}
        rows = fetch_shard(ids, source, dl, tmp_path / "v", tmp_path / "fetch2.tsv")
        assert len(rows) == 6 and srv.counts["/some/"] == 6
