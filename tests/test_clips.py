"""The playable copies of the videos beside the rating pages (tiktalk.report.kit.clips)."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest

from kit_fixtures import SYSTEMS, write_predictions, write_split
from media_utils import write_video
from tiktalk.report.kit.clips import MAX_FPS, clip_links, template_links, transcode, write_clips


def probe(path):
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        a = c.streams.audio[0] if c.streams.audio else None
        frames = [(f.time, f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]
        info = {"codec": v.codec_context.name, "pix_fmt": v.codec_context.pix_fmt,
                "size": (v.codec_context.width, v.codec_context.height),
                "audio": a and (a.codec_context.name, a.codec_context.sample_rate, a.codec_context.channels)}
    return info, frames


def test_clip_is_h264_aac_upright_and_scaled(tmp_path):
    write_video(tmp_path / "big.mp4", duration=1.0, fps=10, width=640, height=480)
    assert transcode(tmp_path / "big.mp4", tmp_path / "big_clip.mp4", height=240) == pytest.approx(1.0)
    info, frames = probe(tmp_path / "big_clip.mp4")
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p" and info["size"] == (320, 240)
    assert info["audio"] == ("aac", 44100, 2)
    # a portrait phone video stored sideways: the copy stands up, the marker corner where it is shown
    write_video(tmp_path / "rot.mp4", duration=1.0, fps=10, width=64, height=48, rotation=90, marker=True)
    transcode(tmp_path / "rot.mp4", tmp_path / "rot_clip.mp4", height=360)
    info, frames = probe(tmp_path / "rot_clip.mp4")
    assert info["size"] == (48, 64), "not turned upright (or scaled above the source)"
    from tiktalk.media.decode import decode_video

    shown = decode_video(tmp_path / "rot.mp4", max_frames=1, frame_size=(64, 48), audio=False).frames[0]
    clip = frames[0][1]
    white = lambda img: img.mean(axis=2) > 200                             # noqa: E731
    assert (white(shown) == white(clip)).mean() > 0.9
    # no audio track in, none out
    write_video(tmp_path / "mute.mp4", duration=1.0, fps=10, audio=False)
    transcode(tmp_path / "mute.mp4", tmp_path / "mute_clip.mp4")
    assert probe(tmp_path / "mute_clip.mp4")[0]["audio"] is None


def test_variable_frame_rate_is_retimed_in_sync(tmp_path):
    """Each frame of the copy shows the source frame on screen at its time (the red level
    encodes the time), so a variable-frame-rate source stays in sync with its audio."""
    write_video(tmp_path / "vfr.mp4", duration=2.0, fps=10, width=64, height=48, vfr=True, n_frames=10)
    with av.open(str(tmp_path / "vfr.mp4")) as c:
        src = [(f.time, float(f.to_ndarray(format="rgb24")[..., 0].mean())) for f in c.decode(video=0)]
    duration = transcode(tmp_path / "vfr.mp4", tmp_path / "vfr_clip.mp4")
    _, frames = probe(tmp_path / "vfr_clip.mp4")
    fps = len(frames) / duration
    assert fps <= MAX_FPS and len(frames) > len(src)
    times = np.array([t for t, _ in src])
    for t, img in frames:
        on_screen = src[int(np.searchsorted(times, t + 1e-6, side="right")) - 1][1]
        assert float(img[..., 0].mean()) == pytest.approx(on_screen, abs=6), t


def test_write_clips_names_videos_without_a_copy(tmp_path):
    (tmp_path / "v").mkdir()
    write_video(tmp_path / "v" / "good.mp4", duration=0.5, fps=10)
    (tmp_path / "v" / "broken.mp4").write_bytes(b"not a video")
    problems = write_clips(["good", "broken", "absent"], [tmp_path / "v"], tmp_path / "clips", height=120)
    assert sorted(problems) == ["absent", "broken"]
    assert "no video file under" in problems["absent"] and "broken.mp4" in problems["broken"]
    assert clip_links(tmp_path / "clips", ["good", "broken", "absent"]) == {"good": "clips/good.mp4"}
    assert clip_links(None, ["good"]) == {}
    assert template_links("videos/{video_id}.webm", ["b", "a"]) == {"a": "videos/a.webm", "b": "videos/b.webm"}
    assert template_links(None, ["a"]) == {}


def test_cli_sheet_writes_the_copies_beside_the_pages(tmp_path):
    from tiktalk.cli import main

    rows = write_split(tmp_path / "test.jsonl", n_videos=4, per_video=1)
    write_predictions(tmp_path / "predictions", rows)
    (tmp_path / "videos").mkdir()
    for r in rows[:3]:                                  # the 4th video is missing
        write_video(tmp_path / "videos" / f"{r['video_id']}.mp4", duration=0.5, fps=10)
    out = tmp_path / "he"
    assert main(["human-eval", "sheet", "--predictions-dir", str(tmp_path / "predictions"),
                 "--dialogues", str(tmp_path / "test.jsonl"), "--baselines", ",".join(SYSTEMS),
                 "--n", "4", "--annotators", "1", "--out", str(out), "--videos-dir",
                 str(tmp_path / "videos"), "--frames", "2", "--clip-height", "96"]) == 0
    clips = sorted(p.name for p in (out / "sheets" / "clips").iterdir())
    assert clips == sorted(f"{r['video_id']}.mp4" for r in rows[:3])
    page = (out / "sheets" / "annotator_1.html").read_text(encoding="utf-8")
    data = json.loads(page.split('id="sheet-data">', 1)[1].split("</script>", 1)[0])
    assert data["videos"] == {r["video_id"]: f"clips/{r['video_id']}.mp4" for r in rows[:3]}
    assert sorted(data["frames"]) == sorted(r["video_id"] for r in rows[:3])
    # a link template of one's own replaces the copies
    assert main(["human-eval", "sheet", "--predictions-dir", str(tmp_path / "predictions"),
                 "--dialogues", str(tmp_path / "test.jsonl"), "--baselines", ",".join(SYSTEMS),
                 "--n", "4", "--annotators", "1", "--out", str(tmp_path / "he2"), "--videos-dir",
                 str(tmp_path / "videos"), "--video-href", "v/{video_id}.mp4"]) == 0
    assert not (tmp_path / "he2" / "sheets" / "clips").exists()
    page = (tmp_path / "he2" / "sheets" / "annotator_1.html").read_text(encoding="utf-8")
    assert f'"v/{rows[3]["video_id"]}.mp4"' in page
