"""One-pass PyAV sampler: uniform targets, audio, and videos that must survive decoding."""

from __future__ import annotations

import av
import numpy as np
import pytest

from media_utils import faststart, truncate_file, write_video
from tiktalk.media.decode import (AUDIO_RATE, DecodeError, FrameRequest, _ReservoirSampler,
                                  decode_video, target_times)


@pytest.fixture(scope="module")
def vids(tmp_path_factory):
    d = tmp_path_factory.mktemp("vids")
    return {
        "basic": write_video(d / "basic.mp4", duration=4.0, fps=5, tone_hz=1000.0),
        "short": write_video(d / "short.mp4", duration=1.0, fps=10),
        "noaudio": write_video(d / "noaudio.mp4", duration=2.0, audio=False),
        "novideo": write_video(d / "novideo.mp4", duration=1.0, video=False),
        "single": write_video(d / "single.mp4", duration=1.0, n_frames=1),
        "vfr": write_video(d / "vfr.mkv", duration=3.0, fps=10, vfr=True),
        "rot": write_video(d / "rot.mp4", duration=1.0, rotation=90, marker=True, width=64, height=48),
        "big": write_video(d / "big.mp4", duration=0.3, fps=10, width=2560, height=1440, audio=False),
        "long": write_video(d / "long.mp4", duration=12.0, fps=5, width=32, height=32),
        "webm": write_video(d / "v.webm", duration=2.0, vcodec="libvpx", acodec="libopus", tone_hz=600.0),
        "bframes": write_video(d / "bf.mp4", duration=10.0, fps=30, width=64, height=48, audio=False,
                               bframes=3, gop=60, preset="medium"),
    }


def red_time(frames: np.ndarray, duration: float) -> np.ndarray:
    """Invert media_utils.frame_image: the red level encodes t / duration."""
    return frames[:, frames.shape[1] // 2, frames.shape[2] // 2, 0].astype(float) / 255 * duration


def test_uniform_targets_and_audio(vids):
    d = decode_video(vids["basic"], max_frames=8, frame_size=32)
    assert d.frames.shape == (8, 32, 32, 3) and d.frames.dtype == np.uint8
    targets = target_times(4.0, 8)
    np.testing.assert_allclose(d.frame_times, targets, atol=0.101)     # nearest frame at 5 fps
    # the pixels are those of the frame at that time (colour round trip error < 0.08 s,
    # while a neighbouring frame would be >= 0.12 s off)
    np.testing.assert_allclose(red_time(d.frames, 4.0), d.frame_times, atol=0.08)
    assert d.has_audio and d.duration == pytest.approx(4.0, abs=0.05)
    assert abs(len(d.audio) - 4.0 * AUDIO_RATE) < 0.1 * AUDIO_RATE
    spec = np.abs(np.fft.rfft(d.audio[AUDIO_RATE:3 * AUDIO_RATE]))
    assert np.fft.rfftfreq(2 * AUDIO_RATE, 1 / AUDIO_RATE)[spec.argmax()] == pytest.approx(1000, abs=2)
    assert 0.4 < np.abs(d.audio).max() < 0.6       # stereo mixed to mono by averaging


def test_fewer_frames_than_max_frames(vids):
    d = decode_video(vids["short"], max_frames=50, frame_size=16)
    assert len(d.frames) == 10
    assert len(np.unique(d.frame_times)) == 10


def test_single_frame(vids):
    d = decode_video(vids["single"], max_frames=50, frame_size=16)
    assert len(d.frames) == 1 and d.has_audio


def test_no_audio_is_not_an_error(vids):
    d = decode_video(vids["noaudio"], max_frames=4, frame_size=16)
    assert len(d.frames) == 4 and d.audio.size == 0 and not d.has_audio
    assert "no audio stream" in d.notes


def test_no_video_stream_fails(vids):
    with pytest.raises(DecodeError, match="no video stream"):
        decode_video(vids["novideo"])


def test_zero_byte_garbage_truncated(vids, tmp_path):
    (tmp_path / "zero.mp4").write_bytes(b"")
    with pytest.raises(DecodeError, match="empty file"):
        decode_video(tmp_path / "zero.mp4")
    (tmp_path / "garbage.mp4").write_bytes(np.random.default_rng(0).bytes(20000))
    with pytest.raises(DecodeError, match="cannot open|no video|no decodable"):
        decode_video(tmp_path / "garbage.mp4")
    # moov at the end (PyAV's default): a truncated file cannot be opened
    t = truncate_file(vids["basic"], tmp_path / "trunc.mp4", 0.5)
    with pytest.raises(DecodeError):
        decode_video(t)
    with pytest.raises(DecodeError, match="not found"):
        decode_video(tmp_path / "missing.mp4")


def test_truncated_with_index_first_is_a_failure(tmp_path):
    """Index at the front, body cut at 60%: the file opens and announces 4 s. It must not
    count as a whole video (it used to give features from its first part only)."""
    src = write_video(tmp_path / "src.mp4", duration=4.0, fps=10, width=64, height=48)
    t = truncate_file(faststart(src, tmp_path / "fs.mp4"), tmp_path / "fs_trunc.mp4", 0.6)
    with pytest.raises(DecodeError, match=r"^truncated: decoded (\d\.\d) s of 4\.0 s \(damaged stream"):
        decode_video(t, max_frames=8, frame_size=16)
    # below the threshold it is a failure; with the check off, what was decoded is kept and the
    # decoded span and the damage are reported
    d = decode_video(t, max_frames=8, frame_size=16, min_decoded_fraction=0.0)
    assert 1 <= len(d.frames) < 8
    assert any(n.startswith("damaged stream") for n in d.notes)
    assert d.frame_times.max() < 0.6 * 4.0 and np.all(np.diff(d.frame_times) > 0)
    assert 0 < len(d.audio) < 4.0 * AUDIO_RATE
    assert d.duration == pytest.approx(4.0, abs=0.05) and 1.0 < d.decoded_s < 0.6 * 4.0 + 0.11


def test_decoded_span_of_whole_files(vids):
    """The span read equals the duration for intact files, also when the picks are served
    early (few frames, no audio: decoding stops, the rest is only demuxed)."""
    for name, duration in (("basic", 4.0), ("noaudio", 2.0), ("long", 12.0), ("single", 0.1)):
        d = decode_video(vids[name], max_frames=2, frame_size=8)
        assert d.decoded_s == pytest.approx(duration, abs=0.11), name
    capped = decode_video(vids["long"], max_frames=2, frame_size=8, max_duration_s=3.0)
    assert 3.0 <= capped.decoded_s < 12.0          # reading stops past the capped span


def test_several_requests_in_one_pass(vids):
    """Every request gets the picks it would get alone (with every frame decoded)."""
    reqs = {"visual": FrameRequest(100, 16), "image": FrameRequest(3, (16, 24))}   # dense: no skip
    d = decode_video(vids["bframes"], requests=reqs, audio=False)
    assert set(d.frame_sets) == {"visual", "image"} and not d.skip_nonref
    for name, req in reqs.items():
        alone = decode_video(vids["bframes"], max_frames=req.max_frames, frame_size=req.size,
                             audio=False, skip_nonref=False)
        got = d.frame_sets[name]
        np.testing.assert_array_equal(got.times, alone.frame_times)
        np.testing.assert_array_equal(got.frames, alone.frames)
    assert d.frame_sets["image"].frames.shape == (3, 16, 24, 3)
    # NONREF skipping only when every request's targets are far enough apart
    sparse = decode_video(vids["bframes"], requests={"a": FrameRequest(4, 8), "b": FrameRequest(6, 8)},
                          audio=False)
    assert sparse.skip_nonref
    with pytest.raises(ValueError, match="max_frames"):
        FrameRequest(0, 8)


def test_variable_frame_rate_mkv(vids):
    d = decode_video(vids["vfr"], max_frames=6, frame_size=16)
    assert len(d.frames) == 6
    assert np.all(np.diff(d.frame_times) > 0)
    # each pick is the decoded frame nearest its target: within the largest VFR gap (0.15 s)
    np.testing.assert_array_less(np.abs(d.frame_times - target_times(d.duration, 6)), 0.151)


def test_rotation_is_applied(vids):
    d = decode_video(vids["rot"], max_frames=2, frame_size=32)
    f = d.frames[0].astype(int)
    # the white marker (stored top-left) is bottom-left after a 90 deg counter-clockwise turn
    assert f[24, 8].min() > 200 and f[8, 8, 1] < 200 and f[8, 24, 1] < 200


def test_large_resolution_and_pixel_cap(vids):
    d = decode_video(vids["big"], max_frames=2, frame_size=16)
    assert d.frames.shape == (2, 16, 16, 3)
    with pytest.raises(DecodeError, match="max_pixels"):
        decode_video(vids["big"], max_pixels=1920 * 1080)


def test_long_video_is_capped(vids):
    d = decode_video(vids["long"], max_frames=6, frame_size=16, max_duration_s=3.0)
    assert d.frame_times.max() <= 3.0 and len(d.frames) == 6
    assert len(d.audio) <= 3 * AUDIO_RATE
    assert d.duration == pytest.approx(12.0, abs=0.1)
    assert any("capped" in n for n in d.notes)


def test_webm_vp8_opus(vids):
    d = decode_video(vids["webm"], max_frames=4, frame_size=16)
    assert len(d.frames) == 4 and d.has_audio and d.audio.size > AUDIO_RATE
    spec = np.abs(np.fft.rfft(d.audio[:AUDIO_RATE]))
    assert np.fft.rfftfreq(AUDIO_RATE, 1 / AUDIO_RATE)[spec.argmax()] == pytest.approx(600, abs=3)


def test_nonref_skipping_keeps_targets(vids):
    full = decode_video(vids["bframes"], max_frames=8, frame_size=16, skip_nonref=False)
    auto = decode_video(vids["bframes"], max_frames=8, frame_size=16, skip_nonref="auto")
    assert auto.skip_nonref and not full.skip_nonref
    assert len(auto.frames) == len(full.frames) == 8
    # skipping B-frames moves a pick by at most a couple of frame intervals
    np.testing.assert_array_less(np.abs(auto.frame_times - full.frame_times), 3.5 / 30)
    # dense targets: auto does not skip (targets < 4 frame intervals apart)
    dense = decode_video(vids["bframes"], max_frames=150, frame_size=8, skip_nonref="auto")
    assert not dense.skip_nonref and len(dense.frames) == 150


def test_reservoir_sampler_without_duration():
    s = _ReservoirSampler(5, cap_s=100.0, out_hw=(8, 8))
    img = np.zeros((8, 8, 3), np.uint8)
    for i in range(97):
        s.push(av.VideoFrame.from_ndarray(img, format="rgb24"), i * 0.1)
    frames, times = s.finish()
    assert len(frames) == 5
    # spread over the whole stream: each pick within half the kept spacing (0.8 s) of its bin centre
    np.testing.assert_array_less(np.abs(times - target_times(9.7, 5)), 0.81)


def test_nonref_loss_triggers_full_decode(vids, monkeypatch):
    import tiktalk.media.decode as D

    forced = decode_video(vids["bframes"], max_frames=250, frame_size=8, skip_nonref=True)
    assert len(forced.frames) < 250                    # skipping B-frames merges dense targets
    monkeypatch.setattr(D, "NONREF_MIN_GAP_FRAMES", 0)  # make "auto" skip for dense targets
    auto = decode_video(vids["bframes"], max_frames=250, frame_size=8, skip_nonref="auto")
    assert len(auto.frames) == 250 and not auto.skip_nonref
    assert any("decoded again" in n for n in auto.notes)
