"""Shard jobs end to end: fetch (local dir, CSV over loopback HTTP) -> extract -> FeatureStore."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from media_utils import loopback_server, serve_bytes, write_video
from tiktalk.formats import STATUS_COLUMNS
from tiktalk.media.config import MediaConfig
from tiktalk.media.shard import FETCH_COLUMNS, extract_shard, fetch_shard, read_tsv
from tiktalk.media.store import FeatureStore

torch.set_num_threads(1)

SMALL = dict(backbone="resnet18", frame_size=32, input_size=32, max_frames=4, max_audio_frames=3,
             batch_size=8, videos_per_batch=2, num_workers=1, max_duration_s=30.0)


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    write_video(d / "v_ok.mp4", duration=2.5, fps=10, tone_hz=880.0)
    write_video(d / "v_noaudio.mp4", duration=1.5, audio=False)
    write_video(d / "v_webm.webm", duration=1.2, vcodec="libvpx", acodec="libopus")
    write_video(d / "v_single.mp4", duration=1.0, n_frames=1)
    write_video(d / "v_novideo.mp4", duration=1.0, video=False)
    (d / "v_zero.mp4").write_bytes(b"")
    (d / "v_garbage.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    return d


IDS = ["v_ok", "v_noaudio", "v_missing", "v_zero", "v_webm", "v_garbage", "v_single", "v_novideo", "../x"]


def test_fetch_then_extract_local(media_dir, tmp_path):
    fetch_tsv = tmp_path / "s00000.fetch.tsv"
    rows = fetch_shard(IDS, {"kind": "local", "root": str(media_dir)}, {}, tmp_path / "videos", fetch_tsv)
    by = {r["video_id"]: r for r in read_tsv(fetch_tsv, FETCH_COLUMNS)}
    assert [r["video_id"] for r in rows] == IDS
    assert {v for v, r in by.items() if r["status"] == "ok"} == {"v_ok", "v_noaudio", "v_webm", "v_single"}
    assert by["v_missing"]["reason"].startswith("resolve: no file")
    assert by["v_zero"]["reason"] == "download: empty file (0 bytes)"
    assert "not a readable media file" in by["v_garbage"]["reason"]
    assert by["v_novideo"]["reason"] == "download: no video stream"
    assert by["../x"]["reason"].startswith("invalid id")
    assert by["v_ok"]["path"] == str((media_dir / "v_ok.mp4").resolve())   # used in place

    npz, status = tmp_path / "s00000.features.npz", tmp_path / "s00000.status.tsv"
    summary = extract_shard(fetch_tsv, SMALL, npz, status, device="cpu")
    st = {r["video_id"]: r for r in read_tsv(status, STATUS_COLUMNS)}
    assert list(st) == IDS
    assert summary["n_ok"] == 4 and summary["visual_weights"].startswith("random init")
    assert st["v_ok"]["status"] == "ok" and st["v_ok"]["reason"] == ""
    assert (st["v_ok"]["n_frames"], st["v_ok"]["n_audio_frames"]) == ("4", "2")   # 2.5 s -> 2 x 0.96 s
    assert float(st["v_ok"]["duration"]) == pytest.approx(2.5, abs=0.05)
    assert (st["v_noaudio"]["status"], st["v_noaudio"]["n_audio_frames"]) == ("ok", "0")
    assert "no audio stream" in summary["notes"]["v_noaudio"]
    assert st["v_single"]["n_frames"] == "1" and st["v_webm"]["n_audio_frames"] == "1"
    assert st["v_zero"]["status"] == "failed" and st["v_zero"]["reason"].startswith("fetch: download: empty")
    assert st["v_zero"]["duration"] == "" and st["v_zero"]["n_frames"] == "0"

    store = FeatureStore([npz])
    assert len(store) == len(IDS) and store.visual_dim == 512 and store.audio_dim == 128
    for vid, r in st.items():
        assert store.frames(vid).shape == (int(r["n_frames"]), 512)
        assert store.audio(vid).shape == (int(r["n_audio_frames"]), 128)
    with np.load(npz) as z:
        assert z["frames"].dtype == np.float16 and z["audio"].dtype == np.float16
    # features of a video do not depend on its shard-mates (batching/offsets are right)
    fetch_one = tmp_path / "one.fetch.tsv"
    fetch_shard(["v_single", "v_ok"], {"kind": "local", "root": str(media_dir)}, {}, tmp_path / "videos", fetch_one)
    extract_shard(fetch_one, dict(SMALL, num_workers=0, videos_per_batch=1), tmp_path / "one.npz",
                  tmp_path / "one.status.tsv")
    one = FeatureStore([tmp_path / "one.npz"])
    for vid in ("v_ok", "v_single"):
        np.testing.assert_allclose(one.frames(vid), store.frames(vid), rtol=1e-2, atol=1e-2)
        np.testing.assert_allclose(one.audio(vid), store.audio(vid), rtol=1e-2, atol=1e-2)
    assert not np.allclose(store.frames("v_ok")[0], store.frames("v_single")[0], atol=1e-3)


def test_fetch_over_http_csv_and_cache(media_dir, tmp_path):
    data = (media_dir / "v_ok.mp4").read_bytes()
    with loopback_server() as srv:
        srv.routes["/a.mp4"] = serve_bytes(data)
        srv.routes["/html"] = serve_bytes(b"<html>login</html>", "text/html")
        csv = tmp_path / "urls.csv"
        csv.write_text(f"id,url\na,{srv.base}/a.mp4\nb,{srv.base}/gone.mp4\nc,{srv.base}/html\n")
        cfg = {"kind": "csv", "csv": str(csv)}
        dl = {"retries": 1, "backoff_base_s": 0.01, "read_timeout_s": 2}
        rows = fetch_shard(["a", "b", "c", "a"], cfg, dl, tmp_path / "v", tmp_path / "f.tsv")
        assert [r["video_id"] for r in rows] == ["a", "b", "c"]      # duplicate fetched once
        assert rows[0]["status"] == "ok" and (tmp_path / "v" / "a.mp4").read_bytes() == data
        assert rows[1]["reason"] == "download: HTTP 404 Not Found"
        assert "HTML" in rows[2]["reason"]
        n = srv.counts["/a.mp4"]
        fetch_shard(["a"], cfg, dl, tmp_path / "v", tmp_path / "f2.tsv")
        assert srv.counts["/a.mp4"] == n                               # cached, validated file reused


def test_nothing_written_when_the_job_fails(media_dir, tmp_path):
    fetch_tsv = tmp_path / "f.tsv"
    fetch_shard(["v_ok"], {"kind": "local", "root": str(media_dir)}, {}, tmp_path / "v", fetch_tsv)
    with pytest.raises(ValueError, match="unknown backbone"):
        extract_shard(fetch_tsv, dict(SMALL, backbone="resnet999"), tmp_path / "x.npz", tmp_path / "x.tsv")
    assert not (tmp_path / "x.npz").exists() and not (tmp_path / "x.tsv").exists()
    rows = fetch_shard(["v_ok"], {"kind": "local_dir", "root": str(media_dir)}, {}, tmp_path / "v",
                       tmp_path / "g.tsv", id_pattern=r"[0-9]+")
    assert rows[0]["status"] == "failed" and "does not match the id pattern" in rows[0]["reason"]
    with pytest.raises(ValueError, match="unknown media config keys"):
        MediaConfig.from_dict({"max_frame": 3})


def test_media_config_defaults_are_the_paper():
    from tiktalk.media.shard import resolve_device

    c = MediaConfig()
    assert (c.max_frames, c.backbone, c.max_audio_frames) == (50, "resnet101", 180)
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == "cpu"


def test_float16_guard():
    from tiktalk.media.shard import _to_f16

    out = _to_f16(np.array([[1.0, 1e6, -1e6]]), "frames")
    assert out.dtype == np.float16 and np.isfinite(out).all() and out[0, 1] == np.float16(65504)
    with pytest.raises(ValueError, match="NaN"):
        _to_f16(np.array([[np.nan]]), "frames")
