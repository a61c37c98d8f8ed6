"""Shard jobs end to end: fetch (local dir, CSV over loopback HTTP) -> extract (one decode per
video, every encoder of the chain) -> FeatureStore / image tokens."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from media_utils import loopback_server, serve_bytes, truncated_video, write_video
from tiktalk.formats import STATUS_COLUMNS
from tiktalk.media.config import MediaConfig
from tiktalk.media.shard import FETCH_COLUMNS, extract_shard, fetch_shard, read_tsv
from tiktalk.media.image_tokens import ImageTokenIndex
from tiktalk.media.store import FeatureStore
from tiktalk.settings import SettingsError

torch.set_num_threads(1)

SMALL = dict(init="random", backbone="resnet18", frame_size=32, input_size=32, max_frames=4, max_audio_frames=3,
             batch_size=8, videos_per_batch=2, num_workers=1, max_duration_s=30.0)
VIT = dict(image_size=32, patch_size=8, hidden_size=12, num_hidden_layers=1, num_attention_heads=2,
           intermediate_size=24)
IMAGE = {"kind": "vit", "name_or_path": None, "vit_config": VIT, "n_frames": 3, "device": "cpu"}


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    write_video(d / "v_ok.mp4", duration=2.5, fps=10, tone_hz=880.0)
    write_video(d / "v_noaudio.mp4", duration=1.5, audio=False)
    write_video(d / "v_webm.webm", duration=1.2, vcodec="libvpx", acodec="libopus")
    write_video(d / "v_single.mp4", duration=1.0, n_frames=1)     # one frame: a still image
    write_video(d / "v_half.mp4", duration=0.5, fps=4)             # 2 frames, audio shorter than a
                                                                   # VGGish example
    write_video(d / "v_novideo.mp4", duration=1.0, video=False)
    (d / "v_zero.mp4").write_bytes(b"")
    (d / "v_garbage.mp4").write_bytes(np.random.default_rng(0).bytes(5000))
    return d


IDS = ["v_ok", "v_noaudio", "v_missing", "v_zero", "v_webm", "v_garbage", "v_single", "v_novideo", "../x",
       "v_half"]


def test_fetch_then_extract_local(media_dir, tmp_path):
    fetch_tsv = tmp_path / "s00000.fetch.tsv"
    rows = fetch_shard(IDS, {"kind": "local", "root": str(media_dir)}, {}, tmp_path / "videos", fetch_tsv)
    by = {r["video_id"]: r for r in read_tsv(fetch_tsv, FETCH_COLUMNS)}
    assert [r["video_id"] for r in rows] == IDS
    assert {v for v, r in by.items() if r["status"] == "ok"} == {"v_ok", "v_noaudio", "v_webm", "v_half"}
    assert by["v_single"]["reason"].startswith("download: a still image, not a video")
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
    assert st["v_half"]["n_frames"] == "2" and st["v_webm"]["n_audio_frames"] == "1"
    assert (st["v_half"]["status"], st["v_half"]["n_audio_frames"]) == ("ok", "0")
    assert "audio 0.5 s is shorter than one VGGish example (0.96 s): no audio frames" in st["v_half"]["notes"]
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
    fetch_shard(["v_half", "v_ok"], {"kind": "local", "root": str(media_dir)}, {}, tmp_path / "videos", fetch_one)
    extract_shard(fetch_one, dict(SMALL, num_workers=0, videos_per_batch=1), tmp_path / "one.npz",
                  tmp_path / "one.status.tsv")
    one = FeatureStore([tmp_path / "one.npz"])
    for vid in ("v_ok", "v_half"):
        np.testing.assert_allclose(one.frames(vid), store.frames(vid), rtol=1e-2, atol=1e-2)
        np.testing.assert_allclose(one.audio(vid), store.audio(vid), rtol=1e-2, atol=1e-2)
    assert not np.allclose(store.frames("v_ok")[0], store.frames("v_half")[0], atol=1e-3)


def test_fetch_over_http_csv_and_cache(media_dir, tmp_path):
    data = (media_dir / "v_ok.mp4").read_bytes()
    with loopback_server() as srv:
        srv.routes["/a.mp4"] = serve_bytes(data)
        srv.routes["/html"] = serve_bytes(b"<html>login</html>", "text/html")
        csv = tmp_path / "urls.csv"
        csv.write_text(f"id,url\na,{srv.base}/a.mp4\nb,{srv.base}/gone.mp4\nc,{srv.base}/html\n")
        cfg = {"kind": "csv", "csv": str(csv)}
        dl = {"retries": 1, "backoff_base_s": 0.01, "read_timeout_s": 2, "allow_private_hosts": True}
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
    with pytest.raises(SettingsError, match="media.extract: unknown key 'max_frame'; did you mean 'max_frames'"):
        MediaConfig.from_dict({"max_frame": 3})


def test_media_configs_are_frozen_and_checked():
    from dataclasses import FrozenInstanceError

    from tiktalk.media.download import DownloadConfig
    from tiktalk.media.image_encoder import ImageEncoderConfig

    c = MediaConfig()
    assert (c.max_frames, c.backbone, c.max_audio_frames) == (50, "resnet101", 180)
    with pytest.raises(FrozenInstanceError):
        c.max_frames = 3
    with pytest.raises(ValueError, match="min_decoded_fraction"):
        MediaConfig.from_dict({"min_decoded_fraction": 1.5})
    d = DownloadConfig.from_dict({"allowed_schemes": ["https"], "private_allowlist": ["10.0.0.0/8"]})
    assert d.allowed_schemes == ("https",) and not d.allow_private_hosts
    with pytest.raises(ValueError, match="private_allowlist: 'nope'"):
        DownloadConfig.from_dict({"private_allowlist": ["nope"]})
    with pytest.raises(SettingsError, match="media.download: unknown key 'retry'"):
        DownloadConfig.from_dict({"retry": 3})
    with pytest.raises(SettingsError, match="media.image_encoder: unknown key 'n_frame'"):
        ImageEncoderConfig.from_dict({"kind": "vit", "vit_config": VIT, "n_frame": 3})
    with pytest.raises(ValueError, match="kind vit needs"):
        ImageEncoderConfig.from_dict({"kind": "vit", "name_or_path": None})


def test_float16_guard():
    from tiktalk.media.store import to_float16

    out = to_float16(np.array([[1.0, 1e6, -1e6]]), "frames")
    assert out.dtype == np.float16 and np.isfinite(out).all() and out[0, 1] == np.float16(65504)
    with pytest.raises(ValueError, match="NaN"):
        to_float16(np.array([[np.nan]]), "frames")


def test_one_decode_feeds_every_encoder(media_dir, tmp_path, monkeypatch):
    """The image encoder rides in the same job: each video is decoded once, with one frame
    request per encoder; one status table; the image shard reads back as (F, T, D) tokens."""
    import tiktalk.media.shard as shard

    calls = []
    real = shard.decode_video

    def counting(path, **kw):
        calls.append((path, sorted(kw["requests"])))
        return real(path, **kw)

    monkeypatch.setattr(shard, "decode_video", counting)
    fetch_tsv = tmp_path / "f.tsv"
    ids = ["v_ok", "v_noaudio", "v_missing", "v_half"]
    fetch_shard(ids, {"kind": "local", "root": str(media_dir)}, {}, tmp_path / "v", fetch_tsv)
    cfg = dict(SMALL, num_workers=0)            # decode in this process, so the calls are seen
    summary = extract_shard(fetch_tsv, cfg, tmp_path / "s.npz", tmp_path / "s.status.tsv",
                            image_encoder=dict(IMAGE, store="frames"), out_image_npz=tmp_path / "s.image.npz")
    assert sorted(p for p, _ in calls) == sorted(str((media_dir / f"{v}.mp4").resolve())
                                                for v in ("v_ok", "v_noaudio", "v_half"))
    assert all(req == ["image", "visual"] for _, req in calls)
    assert set(summary["encoders"]) == {"visual", "audio", "image"}
    st = {r["video_id"]: r for r in read_tsv(tmp_path / "s.status.tsv", STATUS_COLUMNS)}
    assert [v for v, r in st.items() if r["status"] == "ok"] == ["v_ok", "v_noaudio", "v_half"]
    assert float(st["v_ok"]["decoded_s"]) == pytest.approx(2.5, abs=0.11)
    assert st["v_noaudio"]["notes"] == "no audio stream" and st["v_missing"]["decoded_s"] == ""
    index = ImageTokenIndex([tmp_path / "s.image.npz"])
    assert index.video_ids == ids
    toks = {v: index.tokens(v) for v in ids}
    assert toks["v_ok"].shape == (3, 17, 12) and toks["v_half"].shape == (2, 17, 12)
    assert toks["v_missing"].shape == (0, 17, 12)
    with np.load(tmp_path / "s.image.npz") as z:
        assert int(z["tokens_per_frame"]) == 17 and str(z["encoder"]).startswith("vit random init")
        assert z["audio"].shape == (0, 0) and z["frames"].dtype == np.float16
    # the features shard is the same as without the image encoder in the chain
    extract_shard(fetch_tsv, cfg, tmp_path / "plain.npz", tmp_path / "plain.status.tsv")
    with np.load(tmp_path / "s.npz") as a, np.load(tmp_path / "plain.npz") as b:
        assert all(np.array_equal(a[k], b[k]) for k in a.files) and a.files == b.files
    # the image tokens are the encoder's output on the frames it would get decoded alone
    from tiktalk.media.decode import decode_video
    from tiktalk.media.image_encoder import extract_image_features

    alone = decode_video(media_dir / "v_ok.mp4", max_frames=3, frame_size=32, audio=False,
                         skip_nonref=False)
    want = extract_image_features(alone.frames, IMAGE).astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(toks["v_ok"], want)
    # the default store keeps only the two views the BLIP-2 rows read, drawn with the run's seed
    extract_shard(fetch_tsv, cfg, tmp_path / "v.npz", tmp_path / "v.status.tsv",
                  image_encoder=IMAGE, out_image_npz=tmp_path / "v.image.npz", seed=5)
    views = ImageTokenIndex([tmp_path / "v.image.npz"])
    assert (views.layout, views.view_frames, views.view_seed) == ("views", IMAGE["n_frames"], 5)
    for v in ("v_ok", "v_half"):
        for mode in ("img", "video"):
            np.testing.assert_allclose(views.video_tokens(v, mode, IMAGE["n_frames"], 5),
                                       index.video_tokens(v, mode, IMAGE["n_frames"], 5), atol=2e-3)
    assert views.video_tokens("v_missing", "img", IMAGE["n_frames"], 5) is None
    with pytest.raises(ValueError, match="go together"):
        extract_shard(fetch_tsv, cfg, tmp_path / "x.npz", tmp_path / "x.tsv", image_encoder=IMAGE)


def test_truncated_video_is_failed_with_its_span(tmp_path):
    """Index at the front, body cut: the fetch validation refuses it; and a truncated file that
    reaches the decoder anyway (e.g. listed by an older fetch table) fails there."""
    src = tmp_path / "src"
    src.mkdir()
    write_video(src / "whole.mp4", duration=10.0, fps=10)
    truncated_video(src / "cut.mp4", duration=10.0, fraction=0.3)
    rows = fetch_shard(["whole", "cut"], {"kind": "local", "root": str(src)}, {}, tmp_path / "v",
                       tmp_path / "f.tsv")
    assert rows[0]["status"] == "ok"
    assert rows[1]["status"] == "failed"
    assert rows[1]["reason"].startswith("download: truncated: file holds ") and "of 10.0 s" in rows[1]["reason"]
    # the decoder's own check: a fetch table that lists the cut file as ok
    lines = (tmp_path / "f.tsv").read_text().splitlines()
    lines[2] = "\t".join(["cut", "ok", "", str(src / "cut.mp4")])
    (tmp_path / "g.tsv").write_text("\n".join(lines) + "\n")
    extract_shard(tmp_path / "g.tsv", dict(SMALL, num_workers=0), tmp_path / "s.npz", tmp_path / "s.tsv")
    st = {r["video_id"]: r for r in read_tsv(tmp_path / "s.tsv", STATUS_COLUMNS)}
    assert st["whole"]["status"] == "ok" and float(st["whole"]["decoded_s"]) == pytest.approx(10.0, abs=0.11)
    assert st["cut"]["status"] == "failed" and st["cut"]["n_frames"] == "0"
    assert st["cut"]["reason"].startswith("decode: truncated: decoded ") and " of 10.0 s" in st["cut"]["reason"]
    decoded = float(st["cut"]["reason"].split("decoded ")[1].split(" s")[0])
    assert 1.0 < decoded < 4.0
    assert len(FeatureStore([tmp_path / "s.npz"]).frames("cut")) == 0
