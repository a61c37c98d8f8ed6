"""Synthetic demo videos: a coloured shape moving on a grey background, a beeping tone.

Written as real H.264 (libx264, yuv420p) + AAC (mono) MP4 files with PyAV. The encoders run
single-threaded and x264 without its SIMD code (``asm=0``): with SIMD, the same frames gave
different (equally decodable) bitstreams from run to run, 14 distinct files in 30 encodes of one
96 px clip. So the same attributes give byte-identical files on the same FFmpeg build; the
plain-C encoder costs ~14 ms more per demo video.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from tiktalk.demo.texts import COLOURS, PITCHES
from tiktalk.io import atomic_path

AUDIO_FRAME = 1024  # AAC frame size in samples
FOCUS_SCALE = 2     # the shape's size in its focus segment (VideoSpec.focus)
FOCUS_SEGMENTS = 5  # fifths of the video (the paper's Table 6 buckets)


@dataclass(frozen=True)
class VideoSpec:
    """Everything needed to render one demo video (all derived from the generator's seed)."""

    video_id: str
    colour: str            # key of texts.COLOURS
    shape: str             # "圆形" | "方形"
    pitch: str | None      # key of texts.PITCHES; None = no audio stream
    duration: float        # seconds
    background: int        # grey level of the background
    radius: int            # half the size of the shape, pixels
    x0: float              # start centre, as a fraction of the free area
    y0: float
    vx: float              # velocity, pixels per frame
    vy: float
    # Table 6: the fifth of the video (0-4, by frame time) in which the shape is drawn
    # FOCUS_SCALE times larger, where a visual response's colour and shape show most
    focus: int | None = None

    @property
    def has_audio(self) -> bool:
        return self.pitch is not None


def _bounce(start: float, velocity: float, steps: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Positions of a point moving at ``velocity`` and bouncing between ``lo`` and ``hi``."""
    span = hi - lo
    raw = (start - lo) + velocity * steps
    period = np.mod(raw, 2 * span)
    return lo + np.where(period <= span, period, 2 * span - period)


def render_frames(spec: VideoSpec, size: int, fps: int) -> np.ndarray:
    """RGB frames, uint8 (n_frames, size, size, 3)."""
    n = max(1, int(round(spec.duration * fps)))
    r = spec.radius
    lo, hi = float(r), float(size - 1 - r)
    steps = np.arange(n, dtype=np.float64)
    cx = _bounce(lo + spec.x0 * (hi - lo), spec.vx, steps, lo, hi)
    cy = _bounce(lo + spec.y0 * (hi - lo), spec.vy, steps, lo, hi)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    frames = np.empty((n, size, size, 3), dtype=np.uint8)
    frames[:] = spec.background
    colour = np.array(COLOURS[spec.colour], dtype=np.uint8)
    for i in range(n):
        rr = r * FOCUS_SCALE if spec.focus is not None and FOCUS_SEGMENTS * i // n == spec.focus else r
        if spec.shape == "圆形":
            mask = (xx - cx[i]) ** 2 + (yy - cy[i]) ** 2 <= rr * rr
        else:
            mask = (np.abs(xx - cx[i]) <= rr) & (np.abs(yy - cy[i]) <= rr)
        frames[i][mask] = colour
    return frames


def render_tone(pitch_hz: float, duration: float, sample_rate: int) -> np.ndarray:
    """A beeping sine ("嘀嘀声"): 0.3 s on, 0.2 s off, 10 ms fades; float32 (n_samples,)."""
    n = int(round(duration * sample_rate))
    t = np.arange(n, dtype=np.float64) / sample_rate
    phase = np.mod(t, 0.5)
    fade = 0.01
    env = np.clip(np.minimum(phase / fade, (0.3 - phase) / fade), 0.0, 1.0)
    env[phase >= 0.3] = 0.0
    return (0.3 * env * np.sin(2 * math.pi * pitch_hz * t)).astype(np.float32)


def write_mp4(
    path: str | os.PathLike,
    frames: np.ndarray,
    fps: int,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
) -> None:
    """Write ``frames`` (n, H, W, 3 uint8) as H.264 and ``audio`` (mono float32) as AAC, atomically."""
    height, width = frames.shape[1:3]
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            vstream = container.add_stream(
                "libx264", rate=fps, options={"preset": "veryfast", "threads": "1", "g": str(2 * fps),
                                    "x264-params": "asm=0"}
            )
            vstream.width, vstream.height, vstream.pix_fmt = width, height, "yuv420p"
            vstream.codec_context.thread_count = 1
            astream = None
            if audio is not None:
                astream = container.add_stream("aac", rate=sample_rate, layout="mono")
            for i, img in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                frame.pts = i
                container.mux(vstream.encode(frame))
            container.mux(vstream.encode(None))
            if astream is not None:
                for start in range(0, len(audio), AUDIO_FRAME):
                    chunk = np.ascontiguousarray(audio[start:start + AUDIO_FRAME][None, :])
                    aframe = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                    aframe.sample_rate = sample_rate
                    aframe.pts = start
                    container.mux(astream.encode(aframe))
                container.mux(astream.encode(None))


def write_demo_video(path: Path, spec: VideoSpec, size: int, fps: int, sample_rate: int) -> None:
    frames = render_frames(spec, size, fps)
    audio = None
    if spec.pitch is not None:
        audio = render_tone(PITCHES[spec.pitch], spec.duration, sample_rate)
    write_mp4(path, frames, fps, audio, sample_rate)
