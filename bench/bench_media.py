"""Media stage benchmark: the frame sampler vs a bare decode, interleaved over rounds.

Generates ``--n-videos`` 34 s 720x1280 (portrait) H.264 + AAC videos (2 s GOP, B-frames, like
phone uploads). Each round takes one video (round r: video r mod n) and times every variant on
it once, in a rotated order (round r starts at variant r), so that a slow moment of the machine
hits every variant alike. Per variant it prints the median seconds per video with the
interquartile range, and the median of the per-round ratios to the bare decode of the same
round with their min-max: one run decides the ratio. Variants:

* bare: a single sequential PyAV pass decoding every video frame, nothing converted (and the
  same pass over the video and audio streams, the streams the sampler reads);
* sampler: ``decode_video`` (50 frames at 224x224 + 16 kHz audio), ``skip_nonref`` auto and off,
  and without audio;
* one pass, two encoders: the shard job's decode, ResNet's 50 frames and BLIP-2's 8 frames
  (both 224) + audio from one pass, against the two passes the old shard jobs made;
* seek-per-frame: seek to each of 50 targets and decode up to it.

Then, once (not interleaved), the whole shard job (fetch from a local dir + extract: decode in
DataLoader workers, ResNet + VGGish) as videos/s and videos/s per core (``--no-shard``: skip).

Usage: python bench/bench_media.py [--n-videos 3] [--rounds 9] [--backbone resnet18]
Weights are random init (timing only). Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import fractions
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

from tiktalk.media.decode import FrameRequest, decode_video, target_times
from tiktalk.media.shard import extract_shard, fetch_shard

SIZE = 224


def make_video(path: Path, seconds: float = 34.0, width: int = 720, height: int = 1280, fps: int = 30,
               seed: int = 0) -> Path:
    """Moving textured content (so P/B frames carry real residuals), tone audio."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, size=(height // 8, width // 8, 3), dtype=np.uint8)
    base = np.kron(base, np.ones((8, 8, 1), dtype=np.uint8))
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.options = {"preset": "ultrafast", "g": str(2 * fps), "bf": "3", "crf": "28"}
        vs.codec_context.time_base = fractions.Fraction(1, fps)
        as_ = out.add_stream("aac", rate=44100)
        as_.layout = "stereo"
        n = int(seconds * fps)
        for i in range(n):
            img = np.roll(base, shift=(i * 4, i * 3), axis=(0, 1))
            img[:, :, 0] = (i * 255 // n)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for p in vs.encode(frame):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        sr, total, pos = 44100, int(seconds * 44100), 0
        t = np.arange(total) / sr
        wave = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        while pos < total:
            block = wave[pos:pos + 1024]
            block = np.pad(block, (0, 1024 - len(block)))
            fr = av.AudioFrame.from_ndarray(np.stack([block, block]), format="fltp", layout="stereo")
            fr.sample_rate, fr.pts, fr.time_base = sr, pos, fractions.Fraction(1, sr)
            for p in as_.encode(fr):
                out.mux(p)
            pos += 1024
        for p in as_.encode():
            out.mux(p)
    return path


def bare_decode(path: Path) -> int:
    """Single sequential pass, every video frame decoded, nothing converted."""
    n = 0
    with av.open(str(path)) as c:
        c.streams.video[0].codec_context.thread_count = 1
        for _ in c.decode(video=0):
            n += 1
    return n


def seek_sampler(path: Path, max_frames: int = 50, size: int = SIZE) -> int:
    """Seek (backward, to a keyframe) for each target, decode until reaching it."""
    kept = 0
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        vs.codec_context.thread_count = 1
        duration = float(vs.duration * vs.time_base)
        for t in target_times(duration, max_frames):
            c.seek(int(t / vs.time_base), stream=vs, backward=True, any_frame=False)
            for frame in c.decode(vs):
                if frame.time is not None and frame.time >= t - 0.5 / 30:
                    frame.to_ndarray(width=size, height=size, format="rgb24")
                    kept += 1
                    break
    return kept


BOTH = {"visual": FrameRequest(50, SIZE), "image": FrameRequest(8, SIZE)}

def bare_decode_av(path: Path) -> int:
    """The same single pass over the video AND audio streams (every packet of both decoded)."""
    n = 0
    with av.open(str(path)) as c:
        c.streams.video[0].codec_context.thread_count = 1
        for packet in c.demux(c.streams.video[0], c.streams.audio[0]):
            for _ in packet.decode():
                n += 1
    return n


VARIANTS = {
    "bare single-pass PyAV decode (every frame)": bare_decode,
    "bare single pass, video + audio streams": bare_decode_av,
    "sampler, 50 frames + audio, skip_nonref=auto": lambda p: decode_video(p, max_frames=50, frame_size=SIZE),
    "sampler, 50 frames, no audio, skip_nonref=auto": lambda p: decode_video(
        p, max_frames=50, frame_size=SIZE, audio=False),
    "sampler, 50 frames + audio, every frame decoded": lambda p: decode_video(
        p, max_frames=50, frame_size=SIZE, skip_nonref=False),
    "one pass: ResNet 50 + BLIP-2 8 frames + audio": lambda p: decode_video(p, requests=BOTH),
    "two passes (before): ResNet pass + BLIP-2 pass": lambda p: (
        decode_video(p, max_frames=50, frame_size=SIZE),
        decode_video(p, max_frames=8, frame_size=SIZE, audio=False)),
    "seek-per-frame sampler (50 seeks)": seek_sampler,
}
BASE = next(iter(VARIANTS))


def run_rounds(paths: list[Path], rounds: int) -> dict[str, list[float]]:
    """Seconds per variant per round (variant order rotated each round)."""
    names = list(VARIANTS)
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        path = paths[r % len(paths)]
        for k in range(len(names)):
            name = names[(r + k) % len(names)]
            t0 = time.perf_counter()
            VARIANTS[name](path)
            times[name].append(time.perf_counter() - t0)
    return times


def _load() -> str:
    """The 1-minute load average (``n/a`` where the OS has none)."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except (AttributeError, OSError):
        return "n/a"


def quartiles(xs: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[2]


def report(times: dict[str, list[float]]) -> list[str]:
    base = times[BASE]
    lines = ["| per video | median s | IQR s | ratio to bare: median (min-max) |", "|---|---|---|---|"]
    for name, xs in times.items():
        lo, hi = quartiles(xs)
        ratios = [x / b for x, b in zip(xs, base)]
        lines.append(f"| {name} | {statistics.median(xs):.2f} | {lo:.2f}-{hi:.2f} | "
                     f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}) |")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-videos", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--seconds", type=float, default=34.0)
    ap.add_argument("--backbone", default="resnet18", help="shard job: resnet101 (paper) or resnet18")
    ap.add_argument("--workers", type=int, default=None, help="decoder processes (default: cores - 1, >= 1)")
    ap.add_argument("--no-shard", action="store_true", help="skip the whole-shard-job measurement")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args(argv)
    if args.rounds < 2:
        ap.error("--rounds must be >= 2 (a spread needs two rounds)")
    logging.basicConfig(level=logging.WARNING)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = args.workers if args.workers is not None else max(1, cores - 1)
    torch.set_num_threads(1)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_media_"))
    vids = work / "videos"
    vids.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    paths = []
    for i in range(args.n_videos):
        p = vids / f"bench{i:03d}.mp4"
        if not p.exists():
            make_video(p, seconds=args.seconds, seed=i)
        paths.append(p)
    n_frames = bare_decode(paths[0])
    print(f"# {args.n_videos} videos of {args.seconds:g} s 720x1280 H.264+AAC ({n_frames} frames, "
          f"{paths[0].stat().st_size / 2**20:.1f} MiB each) ready in {time.perf_counter() - t0:.1f} s; "
          f"{cores} cores; {args.rounds} interleaved rounds, one decoder thread; "
          f"load average {_load()} (other work on the cores widens every spread)")
    for name in VARIANTS:                        # warm-up: imports, codec init, page cache
        VARIANTS[name](paths[0])
    times = run_rounds(paths, args.rounds)
    print("\n".join(report(times)))
    auto = [x / b for x, b in zip(times["sampler, 50 frames + audio, skip_nonref=auto"], times[BASE])]
    print(f"# goal: sampler (auto) <= 1.1x a bare decode: median {statistics.median(auto):.2f}x, "
          f"{sum(r <= 1.1 for r in auto)}/{len(auto)} rounds within; load average after {_load()}")

    if args.no_shard:
        return 0
    out = work / "shard"
    fetch_tsv = out / "s00000.fetch.tsv"
    cfg = {"init": "random", "backbone": args.backbone, "num_workers": workers, "videos_per_batch": 1,
           "batch_size": 50}
    t0 = time.perf_counter()
    fetch_shard([q.stem for q in paths], {"kind": "local", "root": str(vids)}, {}, out / "v", fetch_tsv)
    t_fetch = time.perf_counter() - t0
    t0 = time.perf_counter()
    summary = extract_shard(fetch_tsv, cfg, out / "s00000.features.npz", out / "s00000.status.tsv", device="cpu")
    t_extract = time.perf_counter() - t0
    vps = len(paths) / (t_fetch + t_extract)
    print(f"# shard job, one run ({args.backbone}, {workers} decoder workers, {summary['n_ok']}/{len(paths)} ok): "
          f"fetch {t_fetch:.1f} s + extract {t_extract:.1f} s (incl. model init) -> "
          f"{vps:.3f} videos/s = {vps / cores:.3f} videos/s per core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
