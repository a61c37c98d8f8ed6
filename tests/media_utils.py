"""Helpers that write small test videos with PyAV (H.264 + AAC by default).

Every video shows a frame whose colour encodes the time (red channel ramps with the frame
time) and, optionally, a tone, so tests can check *which* frames were sampled and *which*
pitch was heard.
"""

from __future__ import annotations

import fractions
from pathlib import Path

import av
import numpy as np


def frame_image(t: float, duration: float, width: int, height: int, marker: bool = False) -> np.ndarray:
    """An RGB image whose red level encodes t/duration (0..255) and whose green is 128.

    With ``marker``, the top-left quarter is white so that rotations can be detected.
    """
    img = np.zeros((height, width, 3), dtype=np.uint8)
    img[..., 0] = int(round(255 * min(max(t / max(duration, 1e-9), 0.0), 1.0)))
    img[..., 1] = 128
    img[..., 2] = 40
    if marker:
        img[: height // 2, : width // 2] = 255
    return img


def write_video(
    path: str | Path,
    *,
    duration: float = 2.0,
    fps: int = 10,
    width: int = 64,
    height: int = 48,
    audio: bool = True,
    video: bool = True,
    tone_hz: float = 440.0,
    sample_rate: int = 44100,
    stereo: bool = True,
    vcodec: str = "libx264",
    acodec: str = "aac",
    n_frames: int | None = None,
    vfr: bool = False,
    rotation: int | None = None,
    marker: bool = False,
    gop: int | None = None,
    bframes: int | None = None,
    preset: str = "ultrafast",
) -> Path:
    """Write a test video; the container is chosen from the file suffix (.mp4, .mkv, .webm).

    ``vfr`` writes frames at irregular timestamps (alternating 1 and 3 time units of 1/(2*fps)).
    ``rotation`` sets the display matrix (degrees, counter-clockwise as FFmpeg defines it).
    """
    path = Path(path)
    n = n_frames if n_frames is not None else max(1, int(round(duration * fps)))
    with av.open(str(path), "w") as out:
        vs = as_ = None
        if video:
            rate = fps * 2 if vfr else fps
            vs = out.add_stream(vcodec, rate=rate)
            vs.width, vs.height = width, height
            vs.pix_fmt = "yuv420p"
            if vcodec == "libx264":
                opts = {"preset": preset, "tune": "zerolatency" if bframes is None else "film"}
                if gop:
                    opts["g"] = str(gop)
                if bframes is not None:
                    opts["bf"] = str(bframes)
                    opts.pop("tune")
                vs.options = opts
            vs.codec_context.time_base = fractions.Fraction(1, rate)
            if rotation is not None:
                vs.set_display_rotation(rotation)
        if audio:
            as_ = out.add_stream(acodec, rate=48000 if acodec in ("libopus", "opus") else sample_rate)
            as_.layout = "stereo" if stereo else "mono"
        # video
        if vs is not None:
            pts = 0
            for i in range(n):
                t_units = pts
                t = t_units / vs.codec_context.time_base.denominator
                img = frame_image(t, duration, width, height, marker=marker)
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                frame.pts = t_units
                frame.time_base = vs.codec_context.time_base
                for packet in vs.encode(frame):
                    out.mux(packet)
                pts += (1 if i % 2 == 0 else 3) if vfr else 1
            for packet in vs.encode():
                out.mux(packet)
        if as_ is not None:
            sr = as_.codec_context.sample_rate
            total = int(round(duration * sr))
            chunk = 1024 if acodec == "aac" else 960
            t = np.arange(total) / sr
            wave = (0.5 * np.sin(2 * np.pi * tone_hz * t)).astype(np.float32)
            channels = 2 if stereo else 1
            pos = 0
            while pos < total:
                block = wave[pos:pos + chunk]
                if len(block) < chunk:
                    block = np.pad(block, (0, chunk - len(block)))
                data = np.tile(block[None, :], (channels, 1)).astype(np.float32)
                frame = av.AudioFrame.from_ndarray(data, format="fltp", layout=as_.layout.name)
                frame.sample_rate = sr
                frame.pts = pos
                frame.time_base = fractions.Fraction(1, sr)
                for packet in as_.encode(frame):
                    out.mux(packet)
                pos += chunk
            for packet in as_.encode():
                out.mux(packet)
    return path


def write_image(path: str | Path, codec: str = "png", width: int = 64, height: int = 48) -> Path:
    """A still image (``png`` or ``mjpeg``), whatever the name's suffix says."""
    path = Path(path)
    with av.open(str(path), "w", format="image2pipe") as out:
        stream = out.add_stream(codec)
        stream.width, stream.height = width, height
        stream.pix_fmt = "rgb24" if codec == "png" else "yuvj420p"
        frame = av.VideoFrame.from_ndarray(frame_image(0.0, 1.0, width, height), format="rgb24")
        for packet in [*stream.encode(frame), *stream.encode()]:
            out.mux(packet)
    return path


def truncate_file(src: str | Path, dst: str | Path, fraction: float) -> Path:
    """The first ``fraction`` of ``src``'s bytes (a cut download / upload)."""
    data = Path(src).read_bytes()
    Path(dst).write_bytes(data[: int(len(data) * fraction)])
    return Path(dst)


def faststart(src: str | Path, dst: str | Path) -> Path:
    """Remux ``src`` with the MP4 index (moov) at the front, as phone uploads and CDNs serve it:
    cut such a file and it still opens, announcing the full duration."""
    with av.open(str(src)) as inp, av.open(str(dst), "w", options={"movflags": "faststart"}) as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        for pkt in inp.demux():
            if pkt.dts is None:
                continue
            pkt.stream = streams[pkt.stream.index]
            out.mux(pkt)
    return Path(dst)


def truncated_video(path: str | Path, *, duration: float = 10.0, fraction: float = 0.3, **kw) -> Path:
    """A video that opens and announces ``duration`` s but holds only the first ``fraction``
    of its bytes (index at the front, body cut)."""
    path = Path(path)
    full = write_video(path.with_name(path.stem + ".src.mp4"), duration=duration, **kw)
    fs = faststart(full, path.with_name(path.stem + ".fs.mp4"))
    out = truncate_file(fs, path, fraction)
    full.unlink()
    fs.unlink()
    return out


# ----------------------------------------------------------------------------- loopback HTTP

import http.server
import json
import re
import threading
import time
from contextlib import contextmanager


class LoopbackServer:
    """A bounded http.server on 127.0.0.1 in a thread. ``routes`` maps a path to a handler
    ``fn(handler, state) -> None``; ``requests`` records (path, Range header) per request,
    ``if_ranges`` the If-Range header of each."""

    def __init__(self):
        self.routes: dict = {}
        self.requests: list[tuple[str, str | None]] = []
        self.if_ranges: list[str | None] = []
        self.counts: dict[str, int] = {}
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = 10

            def log_message(self, *args):  # keep pytest output quiet
                pass

            def do_GET(self):
                path = self.path.split("?", 1)[0]
                with outer.lock:
                    outer.requests.append((self.path, self.headers.get("Range")))
                    outer.if_ranges.append(self.headers.get("If-Range"))
                    outer.counts[path] = outer.counts.get(path, 0) + 1
                    n = outer.counts[path]
                fn = outer.routes.get(path)
                if fn is None:
                    self.send_error(404, "Not Found")
                    return
                try:
                    fn(self, n)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@contextmanager
def loopback_server():
    srv = LoopbackServer().start()
    try:
        yield srv
    finally:
        srv.stop()


def etag_of(data: bytes) -> str:
    import hashlib

    return '"' + hashlib.sha1(data).hexdigest()[:16] + '"'


def serve_bytes(data: bytes, content_type: str = "video/mp4", *, etag: str | None = "auto",
                honour_if_range: bool = True):
    """A route serving ``data`` with Range support (206 / 416) and a strong ETag (``etag``:
    "auto" = a hash of ``data``, None = no ETag). A Range request whose ``If-Range`` is not the
    current ETag gets the whole file (200), as RFC 9110 says, unless ``honour_if_range`` is
    False (a server that ignores If-Range)."""
    tag = etag_of(data) if etag == "auto" else etag

    def fn(h, n):
        rng = h.headers.get("Range")
        if_range = h.headers.get("If-Range")
        if rng and honour_if_range and if_range is not None and if_range != tag:
            rng = None
        if rng:
            m = re.match(r"bytes=(\d+)-$", rng)
            start = int(m.group(1))
            if start >= len(data):
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{len(data)}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            body = data[start:]
            h.send_response(206)
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            body = data
            h.send_response(200)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        if tag:
            h.send_header("ETag", tag)
        h.end_headers()
        h.wfile.write(body)

    return fn


def serve_status(code: int, body: bytes = b"error", content_type: str = "text/plain"):
    def fn(h, n):
        h.send_response(code)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    return fn


def first_then(first, then, n_first: int = 1):
    """Use route ``first`` for the first ``n_first`` requests, then ``then``."""

    def fn(h, n):
        (first if n <= n_first else then)(h, n)

    return fn


def drop_midway(data: bytes, fraction: float = 0.5, *, etag: str | None = "auto"):
    """Announce the full length, send ``fraction`` of the body, then close the connection."""
    tag = etag_of(data) if etag == "auto" else etag

    def fn(h, n):
        h.send_response(200)
        h.send_header("Content-Type", "video/mp4")
        h.send_header("Content-Length", str(len(data)))
        if tag:
            h.send_header("ETag", tag)
        h.end_headers()
        h.wfile.write(data[: int(len(data) * fraction)])
        h.wfile.flush()
        h.close_connection = True
        h.connection.shutdown(2)

    return fn


def stall(data: bytes, seconds: float, fraction: float = 0.25):
    """Send part of the body, then stall for ``seconds`` (the client should time out)."""

    def fn(h, n):
        h.send_response(200)
        h.send_header("Content-Type", "video/mp4")
        h.send_header("Content-Length", str(len(data)))
        h.send_header("ETag", etag_of(data))
        h.end_headers()
        h.wfile.write(data[: int(len(data) * fraction)])
        h.wfile.flush()
        time.sleep(seconds)
        h.close_connection = True

    return fn


def serve_json(obj):
    return serve_status(200, json.dumps(obj).encode(), "application/json")


def redirect(location: str):
    def fn(h, n):
        h.send_response(302)
        h.send_header("Location", location)
        h.send_header("Content-Length", "0")
        h.end_headers()

    return fn
