"""Small playable copies of the videos for the annotation pages.

The paper's annotators rate "after watching the video". :func:`write_clips` re-encodes each
video of a kit once, with PyAV, into ``{out_dir}/{video_id}.mp4``: H.264 (yuv420p, at most
``height`` pixels high, the display rotation applied so phone videos stand up) and AAC stereo
audio, ``+faststart``: the format that Chrome, Edge, Firefox and Safari all play from a local
file, so a folder holding the pages and ``clips/`` works with no server. A video that is
missing or cannot be decoded is listed, not fatal (its page falls back to the thumbnails).
:func:`clip_links` maps the videos that have a clip to the relative link the page uses.

The copy is re-timed to a constant frame rate (the source's, at most :data:`MAX_FPS`): each
output frame shows the source frame on screen at that time, so variable-frame-rate sources
stay in sync with their audio.
"""

from __future__ import annotations

import fractions
import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from tiktalk.io import atomic_path
from tiktalk.report.kit.frames import each_video

MAX_FPS = 30
AUDIO_RATE = 44100
CLIPS_DIR = "clips"


def _display_hw(frame) -> tuple[int, int]:
    """(height, width) of a decoded frame as displayed (after its rotation)."""
    rot = int(round(int(getattr(frame, "rotation", 0) or 0) / 90.0)) % 4
    return (frame.width, frame.height) if rot % 2 else (frame.height, frame.width)


def _out_hw(display_hw: tuple[int, int], height: int) -> tuple[int, int]:
    """At most ``height`` high, the display aspect kept, both sides even (yuv420p)."""
    dh, dw = display_hw
    h = min(height, dh)
    w = max(2, round(h * dw / dh))
    return max(2, h - h % 2), w - w % 2


def transcode(src: str | os.PathLike, dst: str | os.PathLike, *, height: int = 360, crf: int = 28,
              max_seconds: float = 600.0, threads: int = 1) -> float:
    """Re-encode ``src`` into ``dst`` (see the module doc); return the clip's duration in s.

    Raises :class:`tiktalk.media.decode.DecodeError` when ``src`` has no decodable frame.
    """
    import av

    from tiktalk.media.decode import DecodeError, _to_rgb

    with av.open(str(src)) as inp:
        if not inp.streams.video:
            raise DecodeError("no video stream")
        vin = inp.streams.video[0]
        ain = inp.streams.audio[0] if inp.streams.audio else None
        rate = vin.average_rate or vin.guessed_rate or 25
        fps = min(MAX_FPS, max(1, round(float(rate))))
        with atomic_path(dst) as tmp:
            with av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as out:
                vout = aout = None
                resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE)
                pending, slot, start = None, 0, None

                def emit(until: float) -> None:
                    """Show ``pending`` in every output slot before ``until`` seconds."""
                    nonlocal slot
                    while slot / fps < until:
                        frame = av.VideoFrame.from_ndarray(pending, format="rgb24")
                        frame.pts = slot
                        out.mux(vout.encode(frame))
                        slot += 1

                streams = [vin] + ([ain] if ain is not None else [])
                for frame in inp.decode(*streams):
                    if frame.pts is None or frame.time is None:
                        continue
                    if start is None and isinstance(frame, av.VideoFrame):
                        start = frame.time
                    if start is None:
                        continue                      # audio before the first picture
                    t = frame.time - start
                    if t >= max_seconds:
                        break
                    if isinstance(frame, av.AudioFrame):
                        if aout is None:
                            aout = out.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
                        for piece in resampler.resample(frame):
                            piece.pts = None
                            out.mux(aout.encode(piece))
                        continue
                    if vout is None:
                        h, w = _out_hw(_display_hw(frame), height)
                        vout = out.add_stream("libx264", rate=fps, options={
                            "crf": str(crf), "preset": "veryfast", "threads": str(threads)})
                        vout.width, vout.height, vout.pix_fmt = w, h, "yuv420p"
                        vout.codec_context.time_base = fractions.Fraction(1, fps)
                    if pending is not None:
                        emit(t)
                    pending = _to_rgb(frame, (vout.height, vout.width))
                    last = t
                if vout is None or pending is None:
                    raise DecodeError("no decodable video frame")
                emit(min(max_seconds, last + 1.0 / fps))
                out.mux(vout.encode(None))
                if aout is not None:
                    for piece in resampler.resample(None):
                        piece.pts = None
                        out.mux(aout.encode(piece))
                    out.mux(aout.encode(None))
    return slot / fps


def write_clips(video_ids: Iterable[str], video_dirs: Sequence[str | os.PathLike],
                out_dir: str | os.PathLike, *, height: int = 360, threads: int = 1) -> dict[str, str]:
    """``{out_dir}/{video_id}.mp4`` for every video found; return ``{video_id: problem}`` for
    the videos without a clip."""
    import av

    from tiktalk.media.decode import DecodeError

    out = Path(out_dir)

    def clip(video_id: str, path: Path) -> None:
        transcode(path, out / f"{video_id}.mp4", height=height, threads=threads)

    return each_video(video_ids, video_dirs, out, clip, (DecodeError, av.FFmpegError, OSError))


def clip_links(clips_dir: str | os.PathLike | None, video_ids: Iterable[str],
               prefix: str = CLIPS_DIR) -> dict[str, str]:
    """``{video_id: "clips/<video_id>.mp4"}`` for the videos that have a clip in ``clips_dir``
    (the link is relative to the pages, which sit beside ``clips/``)."""
    if clips_dir is None:
        return {}
    root = Path(clips_dir)
    return {v: f"{prefix}/{v}.mp4" for v in sorted(set(video_ids)) if (root / f"{v}.mp4").is_file()}


def template_links(template: str | None, video_ids: Iterable[str]) -> Mapping[str, str]:
    """``{video_id: template with {video_id} filled in}`` (a link the user provides)."""
    if not template:
        return {}
    return {v: template.replace("{video_id}", v) for v in sorted(set(video_ids))}
