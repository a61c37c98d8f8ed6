"""Frame thumbnails for the annotation pages: extract them from videos once, embed them inline.

:func:`extract_thumbnails` decodes a few uniformly spaced frames of each video with PyAV
(:func:`tiktalk.media.decode.decode_video`, no audio) and writes them as small JPEGs
``{out_dir}/{video_id}/{k}.jpg``; a video that is missing or cannot be decoded is listed,
not fatal (its page shows a placeholder). :func:`load_strips` reads such a directory back as
``data:`` URIs for :func:`tiktalk.report.kit.rating_page.render_page`. Any directory laid out the
same way (one sub-directory of .jpg/.png per video id) works, however it was made.
"""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path
from typing import Callable, Iterable, Sequence

IMAGE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png"}
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi")


def find_video(video_dirs: Sequence[str | os.PathLike], video_id: str) -> Path | None:
    for d in video_dirs:
        for suffix in VIDEO_SUFFIXES:
            path = Path(d) / f"{video_id}{suffix}"
            if path.is_file():
                return path
    return None


def _width_for(path: Path, height: int) -> int:
    """Thumbnail width keeping the stream's stored aspect ratio (square when unknown)."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            w, h = stream.codec_context.width, stream.codec_context.height
    except (av.FFmpegError, IndexError, OSError):
        return height
    return max(1, round(height * w / h)) if w and h else height


def each_video(video_ids: Iterable[str], video_dirs: Sequence[str | os.PathLike],
               out_dir: str | os.PathLike, work: Callable[[str, Path], None],
               errors: tuple[type[BaseException], ...]) -> dict[str, str]:
    """Create ``out_dir``, then ``work(video_id, path)`` for every video found under
    ``video_dirs``; return ``{video_id: problem}`` for the videos not found or whose ``work``
    raised one of ``errors``."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    problems: dict[str, str] = {}
    for video_id in sorted(set(video_ids)):
        path = find_video(video_dirs, video_id)
        if path is None:
            problems[video_id] = f"no video file under {[str(d) for d in video_dirs]}"
            continue
        try:
            work(video_id, path)
        except errors as exc:
            problems[video_id] = f"{path}: {exc}"
    return problems


def extract_thumbnails(video_ids: Iterable[str], video_dirs: Sequence[str | os.PathLike],
                       out_dir: str | os.PathLike, n_frames: int = 6, height: int = 96,
                       quality: int = 80) -> dict[str, str]:
    """Write thumbnails per video; return ``{video_id: problem}`` for videos without any."""
    from PIL import Image

    from tiktalk.media.decode import DecodeError, decode_video

    out = Path(out_dir)

    def thumbnails(video_id: str, path: Path) -> None:
        decoded = decode_video(path, max_frames=n_frames, audio=False,
                               frame_size=(height, _width_for(path, height)))
        vdir = out / video_id
        vdir.mkdir(parents=True, exist_ok=True)
        for k, frame in enumerate(decoded.frames):
            buf = io.BytesIO()
            Image.fromarray(frame).save(buf, format="JPEG", quality=quality)
            tmp = vdir / f".{k}.jpg.tmp"
            tmp.write_bytes(buf.getvalue())
            os.replace(tmp, vdir / f"{k}.jpg")

    return each_video(video_ids, video_dirs, out, thumbnails, (DecodeError,))


def load_strips(frames_dir: str | os.PathLike | None, video_ids: Iterable[str],
                max_frames: int = 8) -> dict[str, list[str]]:
    """``{video_id: [data URI, ...]}`` for the videos that have thumbnails in ``frames_dir``."""
    if frames_dir is None:
        return {}
    root = Path(frames_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: frames directory not found")
    strips: dict[str, list[str]] = {}
    for video_id in sorted(set(video_ids)):
        vdir = root / video_id
        if not vdir.is_dir():
            continue
        files = sorted((p for p in vdir.iterdir() if p.suffix.lower() in IMAGE_TYPES),
                       key=lambda p: (len(p.stem), p.stem))[:max_frames]
        uris = [f"data:{IMAGE_TYPES[p.suffix.lower()]};base64,"
                + base64.b64encode(p.read_bytes()).decode("ascii") for p in files]
        if uris:
            strips[video_id] = uris
    return strips
