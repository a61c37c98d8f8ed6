"""Figure 4 of the paper, cases: for a few test dialogues, a strip of the video's frames, the
context, the references and every baseline's response, as one self-contained HTML page (frames
embedded as JPEG data URIs) for the report.

Cases are the dialogues named in the config (``paper_tables.cases.dialogue_ids``), else ``n``
drawn with ``random.Random(seed)`` from the split's dialogue ids (sorted). Frames come from the
video files the media stage fetched (its fetch tables), uniformly spaced over the video; a video
that is missing or cannot be decoded shows a note instead.
"""

from __future__ import annotations

import base64
import html
import io
import os
import random
from typing import Mapping, Sequence

from tiktalk.data.dialogues import read_dialogues
from tiktalk.data.predictions import read_predictions
from tiktalk.io import write_text_atomic
from tiktalk.report.render import split_phrase

STRIP_HEIGHT = 96


def choose_cases(rows: Sequence[Mapping], n: int, seed: int, named: Sequence[str] | None = None) -> list[Mapping]:
    by_id = {r["dialogue_id"]: r for r in rows}
    if named:
        unknown = [d for d in named if d not in by_id]
        if unknown:
            raise KeyError(f"paper_tables.cases.dialogue_ids: {unknown} are not dialogues of the split")
        return [by_id[d] for d in named]
    if n > len(rows):
        raise ValueError(f"paper_tables.cases.n = {n} > the split's {len(rows)} dialogues")
    return [by_id[d] for d in random.Random(seed).sample(sorted(by_id), n)]


def frame_strip(path: str | os.PathLike | None, n_frames: int, height: int = STRIP_HEIGHT) -> tuple[list[str], str]:
    """(JPEG data URIs of ``n_frames`` frames, problem) of one video file."""
    if path is None:
        return [], "no fetched video file"
    from PIL import Image

    from tiktalk.media.clip import stream_hw
    from tiktalk.media.decode import DecodeError, decode_video

    hw = stream_hw(path) or (height, height)
    width = max(1, round(height * hw[1] / hw[0]))
    try:
        decoded = decode_video(path, max_frames=n_frames, frame_size=(height, width), audio=False)
    except DecodeError as exc:
        return [], f"not decodable: {exc}"
    uris = []
    for frame in decoded.frames:
        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, format="JPEG", quality=80)
        uris.append("data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii"))
    return uris, ""


def render_page(cases: Sequence[Mapping], responses: Mapping[str, Mapping[str, str]],
                labels: Mapping[str, str], strips: Mapping[str, tuple[list[str], str]], title: str) -> str:
    """The HTML page; ``responses``: baseline -> {dialogue_id: response}."""
    e = html.escape
    parts = [
        "<!DOCTYPE html><html lang='zh'><head><meta charset='utf-8'>",
        f"<title>{e(title)}</title><style>body{{font-family:sans-serif;max-width:980px;margin:auto}}"
        ".case{border:1px solid #ccc;border-radius:6px;padding:10px;margin:14px 0}"
        ".strip img{height:96px;margin-right:3px}table{border-collapse:collapse}"
        "td,th{padding:3px 8px;text-align:left;vertical-align:top;border-bottom:1px solid #eee}"
        ".note{color:#a33}</style></head><body>",
        f"<h1>{e(title)}</h1>",
    ]
    for k, case in enumerate(cases):
        did = case["dialogue_id"]
        uris, problem = strips.get(case["video_id"], ([], "no frames"))
        parts.append(f"<div class='case'><h2>({chr(ord('a') + k) if k < 26 else k}) {e(did)}</h2>")
        parts.append("<div class='strip'>" + "".join(f"<img alt='frame {i}' src='{u}'>" for i, u in enumerate(uris))
                     + (f"<span class='note'>video {e(case['video_id'])}: {e(problem)}</span>" if problem else "")
                     + "</div>")
        parts.append("<h3>Context</h3><ol>" + "".join(f"<li>{e(t)}</li>" for t in case["context"]) + "</ol>")
        parts.append("<h3>Ground truth</h3><ol>" + "".join(f"<li>{e(r)}</li>" for r in case["responses"]) + "</ol>")
        parts.append("<h3>Responses</h3><table>")
        for b in responses:
            parts.append(f"<tr><th>{e(labels.get(b, b))}</th><td>{e(responses[b].get(did, '(no prediction)'))}</td></tr>")
        parts.append("</table></div>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def build_cases(dialogues_path, predictions: Mapping[str, str | os.PathLike], labels: Mapping[str, str],
                files: Mapping[str, str], out_html, *, split: str, data_source: str, n: int, seed: int,
                named: Sequence[str] | None = None, frames: int = 6) -> list[str]:
    """Write the cases page; return the dialogue ids shown."""
    cases = choose_cases(read_dialogues(dialogues_path, split), n, seed, named)
    responses = {b: {p["dialogue_id"]: p["response"] for p in read_predictions(path)}
                 for b, path in predictions.items()}
    strips = {c["video_id"]: frame_strip(files.get(c["video_id"]), frames) for c in cases} if frames else {}
    title = f"Figure 4: cases from {split_phrase(split, data_source)}"
    write_text_atomic(out_html, render_page(cases, responses, labels, strips, title))
    return [c["dialogue_id"] for c in cases]
