"""One sequential PyAV pass over a video: <= ``max_frames`` uniformly spaced RGB frames and the
audio track as 16 kHz mono float32.

Frame sampling: with a known duration D (capped at ``max_duration_s``) the targets are the
bin centres ``(i + 0.5) * D / n``, i < n; each target takes the decoded frame nearest to it,
and a frame is used at most once (so a 5-frame clip gives 5 frames, not 50 copies). Only
chosen frames are converted, resized inside ``frame.to_ndarray(width=, height=)``. With no
usable duration, a bounded decimating reservoir keeps ~uniform frames in one pass.

``skip_nonref``: "auto" lets the decoder drop non-reference frames (``skip_frame='NONREF'``)
only when targets are >= ``NONREF_MIN_GAP_FRAMES`` frame intervals apart, so that a skipped
B-frame can shift a pick by a frame or two but never merge two targets; if targets were lost
anyway, the video is decoded again without skipping (34 s 720p H.264: 2.2 s vs 3.1 s).

Display rotation (the stream's display matrix) is applied, so portrait phone videos stand up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

AUDIO_RATE = 16000
NONREF_MIN_GAP_FRAMES = 4


class DecodeError(RuntimeError):
    """The video cannot give any frame; ``str(exc)`` is the reason."""


@dataclass
class DecodedVideo:
    frames: np.ndarray                 # (n, H, W, 3) uint8 RGB
    frame_times: np.ndarray            # (n,) float64 seconds from the stream start
    audio: np.ndarray                  # (samples,) float32 mono at AUDIO_RATE; empty if none
    duration: float | None             # media duration in seconds (uncapped), None if unknown
    has_audio: bool
    notes: list[str] = field(default_factory=list)
    skip_nonref: bool = False
    n_targets: int = 0


def target_times(duration: float, n: int) -> np.ndarray:
    """Bin centres of ``n`` equal bins over ``[0, duration)``."""
    return (np.arange(n, dtype=np.float64) + 0.5) * (duration / n)


def _size(frame_size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(frame_size, int):
        return frame_size, frame_size
    h, w = frame_size
    return int(h), int(w)


def _to_rgb(frame, out_hw: tuple[int, int]) -> np.ndarray:
    """RGB uint8 (H, W, 3) of ``frame`` resized (in swscale) and turned upright."""
    h, w = out_hw
    rot = int(getattr(frame, "rotation", 0) or 0)
    k = int(round(rot / 90.0)) % 4
    if k % 2 == 1:
        arr = frame.to_ndarray(width=h, height=w, format="rgb24")
    else:
        arr = frame.to_ndarray(width=w, height=h, format="rgb24")
    if k:
        arr = np.ascontiguousarray(np.rot90(arr, k))
    return arr


def probe_duration(container, vs) -> float | None:
    """Video stream duration, else container duration, in seconds; None if neither is known."""
    if vs.duration and vs.time_base:
        d = float(vs.duration * vs.time_base)
        if d > 0:
            return d
    if container.duration:
        d = container.duration / 1e6
        if d > 0:
            return d
    return None


def decode_video(path: str | Path, *, max_frames: int = 50, frame_size: int | tuple[int, int] = 224,
                 max_duration_s: float = 180.0, skip_nonref: str | bool = "auto", audio: bool = True,
                 max_pixels: int = 4096 * 4096, threads: int = 1) -> DecodedVideo:
    """Decode ``path`` in one pass (see the module doc). Raises :class:`DecodeError`.

    Missing audio stream: ``audio`` is empty and ``has_audio`` False (not an error).
    Missing video stream, unreadable container, no decodable frame: DecodeError.
    Damage after some frames decoded: what was decoded is kept, with a note.
    """
    if max_frames < 1:
        raise ValueError("max_frames must be >= 1")
    want_skip = skip_nonref if isinstance(skip_nonref, bool) else None
    if skip_nonref not in (True, False, "auto"):
        raise ValueError(f"skip_nonref must be True, False or 'auto', got {skip_nonref!r}")
    result = _decode(Path(path), max_frames, _size(frame_size), max_duration_s, want_skip, audio,
                     max_pixels, threads)
    lost = result.n_targets - len(result.frames)
    damaged = any(n.startswith("damaged") for n in result.notes)
    if result.skip_nonref and lost > 0 and want_skip is None and not damaged:
        # Skipping non-reference frames merged targets: decode again with every frame.
        result = _decode(Path(path), max_frames, _size(frame_size), max_duration_s, False, audio,
                         max_pixels, threads)
        result.notes.append(f"NONREF skipping lost {lost} targets; decoded again without it")
    return result


def _decode(path: Path, max_frames: int, out_hw: tuple[int, int], max_duration_s: float,
            want_skip: bool | None, with_audio: bool, max_pixels: int, threads: int) -> DecodedVideo:
    import av

    if not path.exists():
        raise DecodeError(f"file not found: {path}")
    if path.stat().st_size == 0:
        raise DecodeError("empty file (0 bytes)")
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except Exception as exc:
        raise DecodeError(f"cannot open container ({type(exc).__name__}: {exc})") from None
    notes: list[str] = []
    with container:
        if not container.streams.video:
            raise DecodeError("no video stream")
        vs = container.streams.video[0]
        cc = vs.codec_context
        if cc.width and cc.height and cc.width * cc.height > max_pixels:
            raise DecodeError(f"resolution {cc.width}x{cc.height} above max_pixels {max_pixels}")
        cc.thread_count = max(1, int(threads))
        as_ = container.streams.audio[0] if (with_audio and container.streams.audio) else None
        has_audio = bool(container.streams.audio)

        duration = probe_duration(container, vs)
        fps = float(vs.average_rate or vs.guessed_rate or 0) or None
        cap = float(max_duration_s)
        if duration is not None and duration > cap:
            notes.append(f"duration {duration:.1f}s capped at {cap:g}s")
        span = min(duration, cap) if duration is not None else None
        n = max_frames
        if span is not None and fps:
            n = max(1, min(max_frames, int(np.ceil(span * fps))))
        use_skip = False
        if want_skip is True:
            use_skip = True
        elif want_skip is None and span is not None and fps:
            use_skip = (span / n) * fps >= NONREF_MIN_GAP_FRAMES
        if use_skip:
            cc.skip_frame = "NONREF"

        start = float(vs.start_time * vs.time_base) if (vs.start_time is not None and vs.time_base) else 0.0
        a_start = None
        if span is None:
            sampler = _ReservoirSampler(max_frames, cap, out_hw)
        elif fps and span * fps <= max_frames + 0.5:
            # no more frames than wanted: keep them all (targets would tie between frames)
            sampler = _ReservoirSampler(max_frames, span, out_hw)
        else:
            sampler = _UniformSampler(target_times(span, n), out_hw)
        audio_chunks: list[np.ndarray] = []
        audio_samples, audio_cap = 0, int(round(cap * AUDIO_RATE))
        resampler = None
        video_done, audio_done = False, as_ is None
        n_video_frames = 0
        streams = [vs] + ([as_] if as_ is not None else [])
        try:
            for packet in container.demux(*streams):
                if packet.stream is vs:
                    if video_done:
                        continue
                    for frame in packet.decode():
                        if frame.width * frame.height > max_pixels:
                            raise DecodeError(f"resolution {frame.width}x{frame.height} above max_pixels {max_pixels}")
                        t = frame.time
                        if t is None:
                            t = n_video_frames / fps if fps else float(n_video_frames)
                        else:
                            t = t - start
                        n_video_frames += 1
                        if sampler.push(frame, t):
                            video_done = True
                            break
                elif as_ is not None and not audio_done:
                    for frame in packet.decode():
                        if resampler is None:
                            resampler = av.AudioResampler(format="fltp", layout=frame.layout.name,
                                                          rate=AUDIO_RATE)
                        if a_start is None:
                            a_start = frame.time
                        for out in resampler.resample(frame):
                            mono = _mono(out)
                            audio_chunks.append(mono)
                            audio_samples += mono.size
                        if audio_samples >= audio_cap:
                            audio_done = True
                            break
                if video_done and audio_done:
                    break
            # (at EOF, demux yields empty packets that flush the decoders' held-back frames)
        except DecodeError:
            raise
        except Exception as exc:
            if sampler.count() == 0 and sampler.prev is None:
                raise DecodeError(f"decode failed before any frame ({type(exc).__name__}: {exc})") from None
            notes.append(f"damaged stream: stopped after {n_video_frames} frames ({type(exc).__name__})")
        if resampler is not None and not audio_done:
            try:
                for out in resampler.resample(None):
                    audio_chunks.append(_mono(out))
            except Exception:
                pass
        frames, times = sampler.finish()
        if len(frames) == 0:
            raise DecodeError("video stream has no decodable frame")
    audio_arr = np.concatenate(audio_chunks)[:audio_cap] if audio_chunks else np.zeros(0, np.float32)
    if not has_audio:
        notes.append("no audio stream")
    elif with_audio and audio_arr.size == 0:
        notes.append("audio stream without decodable samples")
    n_targets = sampler.n_targets if isinstance(sampler, _UniformSampler) else len(frames)
    return DecodedVideo(frames=frames, frame_times=times, audio=audio_arr.astype(np.float32, copy=False),
                        duration=duration, has_audio=has_audio, notes=notes, skip_nonref=use_skip,
                        n_targets=n_targets)


def _mono(frame) -> np.ndarray:
    """Mean over channels of a planar float frame (the VGGish reference's mono mix)."""
    arr = frame.to_ndarray()
    if arr.ndim == 1:
        return arr.astype(np.float32, copy=False)
    return arr.mean(axis=0, dtype=np.float32)


class _UniformSampler:
    """Nearest decoded frame to each target time; each frame used at most once."""

    def __init__(self, targets: np.ndarray, out_hw: tuple[int, int]):
        self.targets = targets
        self.n_targets = len(targets)
        self.out_hw = out_hw
        self.j = 0
        self.prev = None          # (index, time, frame)
        self.idx = 0
        self.last_used = -1
        self.frames: list[np.ndarray] = []
        self.times: list[float] = []

    def count(self) -> int:
        return len(self.frames)

    def _take(self, item) -> None:
        i, t, frame = item
        if i != self.last_used:
            self.frames.append(_to_rgb(frame, self.out_hw))
            self.times.append(t)
            self.last_used = i

    def push(self, frame, t: float) -> bool:
        """Offer a decoded frame; True when every target is served."""
        cur = (self.idx, t, frame)
        self.idx += 1
        while self.j < self.n_targets and t >= self.targets[self.j]:
            tgt = self.targets[self.j]
            if self.prev is not None and abs(self.prev[1] - tgt) <= abs(t - tgt) and self.prev[0] != self.last_used:
                self._take(self.prev)
            else:
                self._take(cur)
            self.j += 1
        self.prev = cur
        return self.j >= self.n_targets

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        if self.j < self.n_targets and self.prev is not None:
            self._take(self.prev)  # targets past the last frame: the last frame, once
        return _stack(self.frames, self.times, self.out_hw)


class _ReservoirSampler:
    """Unknown duration: keep every ``step``-th frame, halving the kept set (and doubling the
    step) whenever it exceeds 2 * n; finish picks n evenly spaced kept frames."""

    def __init__(self, n: int, cap_s: float, out_hw: tuple[int, int]):
        self.n, self.cap_s, self.out_hw = n, cap_s, out_hw
        self.step, self.idx = 1, 0
        self.kept: list[tuple[float, np.ndarray]] = []
        self.prev = None
        self.n_targets = n
        self.last_t = 0.0

    def count(self) -> int:
        return len(self.kept)

    def push(self, frame, t: float) -> bool:
        if t > self.cap_s:
            return True
        self.last_t = t
        if self.idx % self.step == 0:
            self.kept.append((t, _to_rgb(frame, self.out_hw)))
            if len(self.kept) > 2 * self.n:
                self.kept = self.kept[::2]
                self.step *= 2
        self.idx += 1
        self.prev = True
        return False

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        kept = self.kept
        if len(kept) > self.n:
            # the kept frame nearest each bin centre over the span seen (each used once)
            times = np.array([k[0] for k in kept])
            t0 = times[0]
            frame_dt = (self.last_t - t0) / max(1, self.idx - 1)
            targets = t0 + target_times(self.last_t - t0 + frame_dt, self.n)
            pick = sorted({int(np.abs(times - tg).argmin()) for tg in targets})
            kept = [kept[i] for i in pick]
        return _stack([k[1] for k in kept], [k[0] for k in kept], self.out_hw)


def _stack(frames: list[np.ndarray], times: list[float], out_hw: tuple[int, int]):
    if not frames:
        return np.zeros((0, out_hw[0], out_hw[1], 3), np.uint8), np.zeros(0, np.float64)
    return np.stack(frames), np.asarray(times, dtype=np.float64)
