"""`tiktalk media probe`: a few ids of the release, fetched with each source as a shard job
would, and per source how many worked and why the others did not (loopback server only)."""

from __future__ import annotations

import pytest
import yaml

from dag_helpers import write_release
from media_utils import loopback_server, serve_bytes, serve_json, serve_status, write_video
from tiktalk.cli import main
from tiktalk.media.probe import group_reason, release_ids, sources_to_probe

IDS = [f"71067162823936770{i:02d}" for i in range(8)]


@pytest.fixture
def setup(tmp_path):
    """A release of 8 videos, served by a loopback server: 5 fine, 2 missing (404), 1 a page."""
    write_release(tmp_path / "release", {v: ("train", "test")[i % 2] for i, v in enumerate(IDS)})
    video = write_video(tmp_path / "v.mp4", duration=1.0).read_bytes()
    with loopback_server() as srv:
        for i, vid in enumerate(IDS):
            route = (serve_status(404) if i in (1, 4) else
                     serve_status(200, b"<html>login</html>", "text/html") if i == 6 else serve_bytes(video))
            srv.routes[f"/v/{vid}"] = route
        (tmp_path / "urls.csv").write_text("id,url\n" + "".join(f"{v},{srv.base}/v/{v}\n" for v in IDS))
        srv.routes["/iteminfo/"] = serve_json({"status_code": 0, "item_list": []})
        config = {"release": {"source": "release", "dir": str(tmp_path / "release")},
                  "media": {"source": {"kind": "csv", "csv": str(tmp_path / "urls.csv")},
                            "download": {"retries": 0, "private_allowlist": ["127.0.0.1/32"]}}}
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
        yield tmp_path, srv, config


def run(tmp_path, capsys, *args):
    rc = main(["media", "probe", "--configfile", str(tmp_path / "config.yaml"), *args])
    return rc, capsys.readouterr().out


def test_probe_counts_and_groups_the_reasons(setup, capsys, monkeypatch):
    tmp_path, srv, _ = setup
    monkeypatch.chdir(tmp_path)                     # no results/data/videos.tsv here: the release
    rc, out = run(tmp_path, capsys, "--n", "8")
    lines = out.splitlines()
    assert rc == 0
    assert lines[0].startswith("csv: 5 of 8 videos fetched")
    assert lines[1:] == ["    2  download: HTTP 404 Not Found",
                         "    1  download: server sent an HTML page (Content-Type text/html), not a video"]
    assert sum(srv.counts.values()) == 8 and not list(tmp_path.glob("**/*.mp4.part"))


def test_probe_compares_sources_and_fails_when_one_fetches_nothing(setup, capsys, monkeypatch):
    tmp_path, srv, _ = setup
    monkeypatch.chdir(tmp_path)
    douyin = "{kind: douyin_api, api_url: '%s/iteminfo/'}" % srv.base
    rc, out = run(tmp_path, capsys, "--n", "6", "--source", "csv", "--source", douyin,
                  "--keep", str(tmp_path / "kept"))
    lines = out.splitlines()
    assert rc == 1
    assert lines[0].startswith("csv: ")
    assert lines[-1].startswith("douyin_api: stopped: media.source douyin_api: the iteminfo endpoint")
    assert "answered nothing for the first 5 ids" in lines[-1]
    assert srv.counts["/iteminfo/"] == 5
    assert list((tmp_path / "kept").glob("0-csv/videos/*.mp4"))          # --keep keeps them


def test_ids_come_from_a_file_the_manifest_or_the_release(setup, tmp_path):
    root, _, config = setup
    assert release_ids(config) == sorted(IDS)
    (root / "ids.txt").write_text("video_id\n1\n2\n2\n")
    assert release_ids(config, root / "ids.txt") == ["1", "2"]
    manifest = root / "videos.tsv"
    manifest.write_text("video_id\tsplit\tshard\n9\ttrain\ts00000\n")
    assert release_ids(config, manifest=manifest) == ["9"]
    with pytest.raises(ValueError, match="no video ids: .*give --ids FILE"):
        release_ids({"release": {"source": "demo"}}, manifest=root / "none.tsv")


def test_sources_named_by_kind_take_the_configs_block():
    config = {"media": {"source": {"kind": "yt_dlp", "cookies": "c.txt"}}}
    assert sources_to_probe(config, []) == [{"kind": "yt_dlp", "cookies": "c.txt"}]
    assert sources_to_probe(config, ["yt-dlp", "douyin_api", "{kind: csv, csv: u.csv}"]) == [
        {"kind": "yt_dlp", "cookies": "c.txt"}, {"kind": "douyin_api"}, {"kind": "csv", "csv": "u.csv"}]
    assert group_reason("resolve: yt-dlp: [Douyin] 123: Fresh cookies", "123") == \
        "resolve: yt-dlp: [Douyin] <id>: Fresh cookies"
