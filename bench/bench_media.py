"""Media stage benchmark: frame sampler vs bare decode vs seek-per-frame, and the shard job.

Generates ``--n-videos`` 34 s 720x1280 (portrait) H.264 + AAC videos (2 s GOP, B-frames, like
phone uploads) and prints, in one run:

* our sampler (decode_video: 50 frames at 224x224 + 16 kHz audio) per video, with NONREF
  skipping on ("auto") and off, as a ratio to a bare single-pass PyAV decode of the same file;
* a seek-per-frame sampler (seek to each target, decode to it) as a ratio to the same;
* the whole shard job (fetch_shard from a local dir + extract_shard: decode in DataLoader
  workers, ResNet + VGGish) as videos/s and videos/s per core.

Usage: python bench/bench_media.py [--n-videos 4] [--backbone resnet18] [--workdir DIR]
Weights are random init (timing only). Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import fractions
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import torch

from tiktalk.media.decode import decode_video, target_times
from tiktalk.media.shard import extract_shard, fetch_shard


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


def seek_sampler(path: Path, max_frames: int = 50, size: int = 224) -> int:
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


def timeit(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-videos", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=34.0)
    ap.add_argument("--backbone", default="resnet101", help="resnet101 (paper) or resnet18 (small)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--workers", type=int, default=None, help="decoder processes (default: cores - 1, >= 1)")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = args.workers if args.workers is not None else max(1, cores - 1)
    torch.set_num_threads(max(1, cores - workers) if workers < cores else 1)
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
    print(f"# {args.n_videos} videos of {args.seconds:g} s 720x1280 H.264+AAC ready in "
          f"{time.perf_counter() - t0:.1f} s ({paths[0].stat().st_size / 2**20:.1f} MiB each); {cores} cores")

    p = paths[0]
    n_all = bare_decode(p)
    t_bare = timeit(lambda: bare_decode(p), args.repeat)
    res = {}
    for mode in ("auto", False):
        d = decode_video(p, max_frames=50, frame_size=224, skip_nonref=mode)
        res[mode] = (timeit(lambda: decode_video(p, max_frames=50, frame_size=224, skip_nonref=mode), args.repeat), d)
    d_video_only = timeit(lambda: decode_video(p, max_frames=50, frame_size=224, skip_nonref=False, audio=False),
                          args.repeat)
    t_seek = timeit(lambda: seek_sampler(p), args.repeat)
    t_auto, d_auto = res["auto"]
    t_full, d_full = res[False]
    shift = np.abs(d_auto.frame_times - d_full.frame_times).max() if len(d_auto.frame_times) == len(d_full.frame_times) else float("nan")
    print(f"bare single-pass PyAV decode ({n_all} frames):          {t_bare:6.2f} s/video  1.00x")
    print(f"our sampler, all frames decoded (50 + audio):      {t_full:6.2f} s/video  {t_full / t_bare:.2f}x"
          f"  (video only {d_video_only:.2f} s)")
    print(f"our sampler, skip_nonref=auto (used: {d_auto.skip_nonref}):          {t_auto:6.2f} s/video  "
          f"{t_auto / t_bare:.2f}x  ({len(d_auto.frames)}/{d_auto.n_targets} targets kept, max pick shift "
          f"{shift * 1000:.0f} ms vs full decode)")
    print(f"seek-per-frame sampler (50 seeks):                 {t_seek:6.2f} s/video  {t_seek / t_bare:.2f}x")

    out = work / "shard"
    fetch_tsv = out / "s00000.fetch.tsv"
    cfg = {"backbone": args.backbone, "num_workers": workers, "videos_per_batch": 1, "batch_size": 50}
    t0 = time.perf_counter()
    fetch_shard([q.stem for q in paths], {"kind": "local", "root": str(vids)}, {}, out / "v", fetch_tsv)
    t_fetch = time.perf_counter() - t0
    t0 = time.perf_counter()
    summary = extract_shard(fetch_tsv, cfg, out / "s00000.features.npz", out / "s00000.status.tsv", device="cpu")
    t_extract = time.perf_counter() - t0
    total = t_fetch + t_extract
    vps = len(paths) / total
    print(f"shard job ({args.backbone}, {workers} decoder workers, {summary['n_ok']}/{len(paths)} ok): "
          f"fetch {t_fetch:.1f} s + extract {t_extract:.1f} s (incl. model init) -> "
          f"{vps:.3f} videos/s = {vps / cores:.3f} videos/s per core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
