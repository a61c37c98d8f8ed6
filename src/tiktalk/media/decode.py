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

Several consumers, one pass: ``requests`` maps a name to a :class:`FrameRequest` (how many
frames, what size), e.g. the ResNet's 50 frames at 224 px and the BLIP-2 encoder's 8 frames at
its own size; every request gets its own uniformly spaced picks from the same decoded frames
(NONREF skipping is used only when every request allows it).

Truncation: after the picks are served the rest of the video stream is still demuxed (packets
read, not decoded), so the span the file really holds (``decoded_s``) is known. A file whose
index announces 30 s but whose body ends after 4 s (index at the front, body cut) raises
``DecodeError("truncated: decoded 4.0 s of 30.0 s ...")`` when ``decoded_s`` is below
``min_decoded_fraction`` of the (capped) duration; above it the video is kept with a note.

Display rotation (the stream's display matrix) is applied, so portrait phone videos stand up.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

log = logging.getLogger(__name__)

AUDIO_RATE = 16000
NONREF_MIN_GAP_FRAMES = 4
#: default share of the (capped) duration a file must hold to count as complete
MIN_DECODED_FRACTION = 0.9
PRIMARY = "frames"   # the request name used by the single-request form of decode_video


class DecodeError(RuntimeError):
    """The video cannot give any frame; ``str(exc)`` is the reason."""


@dataclass(frozen=True)
class FrameRequest:
    """Frames one consumer wants: at most ``max_frames`` uniformly spaced frames, resized to
    ``size`` (an int: square; or ``(height, width)``)."""

    max_frames: int
    size: int | tuple[int, int]

    def __post_init__(self):
        if self.max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {self.max_frames}")


@dataclass
class FrameSet:
    frames: np.ndarray                 # (n, H, W, 3) uint8 RGB
    times: np.ndarray                  # (n,) float64 seconds from the stream start
    n_targets: int


@dataclass
class DecodedVideo:
    frame_sets: dict[str, FrameSet]    # one per request, by request name
    audio: np.ndarray                  # (samples,) float32 mono at AUDIO_RATE; empty if none
    duration: float | None             # media duration in seconds (uncapped), None if unknown
    has_audio: bool
    decoded_s: float = 0.0             # seconds of the video stream the file really holds (read)
    notes: list[str] = field(default_factory=list)
    skip_nonref: bool = False

    @property
    def _primary(self) -> FrameSet:
        return self.frame_sets[PRIMARY] if PRIMARY in self.frame_sets else next(iter(self.frame_sets.values()))

    @property
    def frames(self) -> np.ndarray:
        """The frames of the first (or only) request."""
        return self._primary.frames

    @property
    def frame_times(self) -> np.ndarray:
        return self._primary.times

    @property
    def n_targets(self) -> int:
        return self._primary.n_targets

    @property
    def lost_targets(self) -> int:
        return sum(fs.n_targets - len(fs.frames) for fs in self.frame_sets.values())


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


def stream_start(vs) -> float:
    """The video stream's first timestamp in seconds (0 when unknown)."""
    return float(vs.start_time * vs.time_base) if (vs.start_time is not None and vs.time_base) else 0.0


def packet_end(packet, start: float, frame_dt: float | None, tb: float | None = None) -> float | None:
    """End time (seconds from ``start``) of a demuxed packet: pts + duration; a packet without
    a duration counts one frame interval. None for a packet without timestamps. ``tb``: the
    stream's time base as a float, when the caller has it (saves a Fraction per packet)."""
    ts = packet.pts if packet.pts is not None else packet.dts
    if ts is None:
        return None
    if tb is None:
        fr = packet.time_base
        if fr is None:
            return None
        tb = fr.numerator / fr.denominator      # float arithmetic: this runs for every packet
    end = ts * tb - start
    if packet.duration:
        end += packet.duration * tb
    elif frame_dt:
        end += frame_dt
    return end


def truncation(decoded_s: float, duration: float | None, max_duration_s: float,
               min_fraction: float) -> str | None:
    """``"decoded 4.1 s of 30.0 s"`` when the file holds less than ``min_fraction`` of its
    (capped) duration, else None. Unknown duration: None (nothing to compare with)."""
    if duration is None or min_fraction <= 0:
        return None
    expected = min(duration, max_duration_s)
    if decoded_s < min_fraction * expected:
        return f"decoded {decoded_s:.1f} s of {expected:.1f} s"
    return None


def decode_video(path: str | Path, *, max_frames: int = 50, frame_size: int | tuple[int, int] = 224,
                 max_duration_s: float = 180.0, skip_nonref: str | bool = "auto", audio: bool = True,
                 max_pixels: int = 4096 * 4096, threads: int = 1,
                 requests: Mapping[str, FrameRequest] | None = None,
                 min_decoded_fraction: float = MIN_DECODED_FRACTION) -> DecodedVideo:
    """Decode ``path`` in one pass (see the module doc). Raises :class:`DecodeError`.

    ``requests`` (name -> :class:`FrameRequest`) asks for several frame sets at once; without
    it the one request is ``max_frames`` frames of ``frame_size`` (``DecodedVideo.frames``).
    Missing audio stream: ``audio`` is empty and ``has_audio`` False (not an error).
    Missing video stream, unreadable container, no decodable frame: DecodeError.
    A file holding less than ``min_decoded_fraction`` of its duration (0 disables the check):
    DecodeError ``"truncated: decoded X s of Y s"``. Damage after some frames decoded (and
    above that share): what was decoded is kept, with a note.
    """
    if requests is None:
        requests = {PRIMARY: FrameRequest(max_frames, frame_size)}
    if not requests:
        raise ValueError("decode_video needs at least one frame request")
    want_skip = skip_nonref if isinstance(skip_nonref, bool) else None
    if skip_nonref not in (True, False, "auto"):
        raise ValueError(f"skip_nonref must be True, False or 'auto', got {skip_nonref!r}")
    args = (Path(path), dict(requests), max_duration_s, audio, max_pixels, threads)
    result = _decode(*args, want_skip)
    lost = result.lost_targets
    damaged = any(n.startswith("damaged") for n in result.notes)
    if result.skip_nonref and lost > 0 and want_skip is None and not damaged:
        # Skipping non-reference frames merged targets: decode again with every frame.
        result = _decode(*args, False)
        result.notes.append(f"NONREF skipping lost {lost} targets; decoded again without it")
    short = truncation(result.decoded_s, result.duration, max_duration_s, min_decoded_fraction)
    if short:
        damage = [n for n in result.notes if n.startswith("damaged")]
        raise DecodeError(f"truncated: {short}" + (f" ({damage[0]})" if damage else ""))
    return result


def _make_sampler(req: FrameRequest, span: float | None, fps: float | None, cap: float):
    out_hw = _size(req.size)
    n = req.max_frames
    if span is not None and fps:
        n = max(1, min(req.max_frames, int(np.ceil(span * fps))))
    if span is None:
        return _ReservoirSampler(req.max_frames, cap, out_hw)
    if fps and span * fps <= req.max_frames + 0.5:
        # no more frames than wanted: keep them all (targets would tie between frames)
        return _ReservoirSampler(req.max_frames, span, out_hw)
    return _UniformSampler(target_times(span, n), out_hw)


def _decode(path: Path, requests: dict[str, FrameRequest], max_duration_s: float, with_audio: bool,
            max_pixels: int, threads: int, want_skip: bool | None) -> DecodedVideo:
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
        frame_dt = 1.0 / fps if fps else None
        cap = float(max_duration_s)
        if duration is not None and duration > cap:
            notes.append(f"duration {duration:.1f}s capped at {cap:g}s")
        span = min(duration, cap) if duration is not None else None
        samplers = {name: _make_sampler(req, span, fps, cap) for name, req in requests.items()}
        use_skip = False
        if want_skip is True:
            use_skip = True
        elif want_skip is None and span is not None and fps:
            # every request's targets must be >= NONREF_MIN_GAP_FRAMES frame intervals apart
            use_skip = all(isinstance(s, _UniformSampler)
                           and (span / s.n_targets) * fps >= NONREF_MIN_GAP_FRAMES
                           for s in samplers.values())
        if use_skip:
            cc.skip_frame = "NONREF"

        start = stream_start(vs)
        vtb = vs.time_base.numerator / vs.time_base.denominator if vs.time_base else None
        pending = list(samplers.values())
        audio_chunks: list[np.ndarray] = []
        audio_samples, audio_cap = 0, int(round(cap * AUDIO_RATE))
        resampler = None
        video_done, audio_done = False, as_ is None
        n_video_frames = 0
        read_end = 0.0          # end of the last video packet read: the span the file holds
        past_span = False       # a video packet beyond the (capped) span was read
        streams = [vs] + ([as_] if as_ is not None else [])
        try:
            for packet in container.demux(*streams):
                if packet.stream is vs:
                    end = packet_end(packet, start, frame_dt, vtb)
                    if end is not None:
                        read_end = max(read_end, end)
                        if span is not None and end >= span:
                            past_span = True
                    if video_done:
                        if audio_done and (past_span or span is None):
                            break
                        continue          # read on (no decoding) to learn the span held
                    for frame in packet.decode():
                        if frame.width * frame.height > max_pixels:
                            raise DecodeError(f"resolution {frame.width}x{frame.height} above max_pixels {max_pixels}")
                        t = frame.time
                        if t is None:
                            t = n_video_frames / fps if fps else float(n_video_frames)
                        else:
                            t = t - start
                        n_video_frames += 1
                        pending = [s for s in pending if not s.push(frame, t)]
                        if not pending:
                            video_done = True
                            break
                elif as_ is not None and not audio_done:
                    for frame in packet.decode():
                        if resampler is None:
                            resampler = av.AudioResampler(format="flt", layout=frame.layout.name,
                                                          rate=AUDIO_RATE)
                        for out in resampler.resample(frame):
                            audio_chunks.append(out.to_ndarray())
                            audio_samples += out.samples
                        if audio_samples >= audio_cap:
                            audio_done = True
                            break
                if video_done and audio_done and (past_span or span is None):
                    break
            # (at EOF, demux yields empty packets that flush the decoders' held-back frames)
        except DecodeError:
            raise
        except Exception as exc:
            if all(s.count() == 0 and s.prev is None for s in samplers.values()):
                raise DecodeError(f"decode failed before any frame ({type(exc).__name__}: {exc})") from None
            notes.append(f"damaged stream: stopped after {n_video_frames} frames at {read_end:.1f} s "
                         f"({type(exc).__name__})")
        if resampler is not None and not audio_done:
            try:
                for out in resampler.resample(None):
                    audio_chunks.append(out.to_ndarray())
            except Exception:
                pass
        sets = {}
        for name, sampler in samplers.items():
            frames, times = sampler.finish()
            if len(frames) == 0:
                raise DecodeError("video stream has no decodable frame")
            n_targets = sampler.n_targets if isinstance(sampler, _UniformSampler) else len(frames)
            sets[name] = FrameSet(frames, times, n_targets)
    channels = len(resampler.layout.channels) if resampler is not None else 1
    audio_arr = _mono(audio_chunks, channels)[:audio_cap]
    if not has_audio:
        notes.append("no audio stream")
    elif with_audio and audio_arr.size == 0:
        notes.append("audio stream without decodable samples")
    return DecodedVideo(frame_sets=sets, audio=audio_arr.astype(np.float32, copy=False),
                        duration=duration, has_audio=has_audio, decoded_s=round(read_end, 3),
                        notes=notes, skip_nonref=use_skip)


def _mono(chunks: list[np.ndarray], channels: int) -> np.ndarray:
    """Mean over channels (the VGGish reference's mono mix) of packed (interleaved) float32
    chunks, each ``(1, samples * channels)`` as PyAV gives a packed frame. One mix at the end
    instead of one per frame: the per-frame numpy calls were a tenth of a 34 s video's decode."""
    if not chunks:
        return np.zeros(0, np.float32)
    inter = np.concatenate([c.reshape(-1) for c in chunks])
    if channels == 1:
        return inter.astype(np.float32, copy=False)
    return inter.reshape(-1, channels).mean(axis=1, dtype=np.float32)


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
