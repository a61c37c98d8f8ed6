"""The paper's Table 4 / kappa / Figure 2(b) numbers, and the frames strip of the rating pages."""

from __future__ import annotations

import re
from pathlib import Path

from media_utils import write_video
from tiktalk.report.kit.frames import extract_thumbnails, load_strips
from tiktalk.report.paper import (
    FIGURE2B_RESPONSES,
    FIGURE2B_TIKTALK,
    FIGURE2B_VIDEOS,
    TABLE4,
    TABLE4_ANNOTATORS,
    TABLE4_CRITERIA,
    TABLE4_DIALOGUES,
    TABLE4_KAPPA,
    TABLE4_ROWS,
    TABLE4_SCALE,
)

EXCERPT = Path(__file__).parent / "data" / "tiktalk_table4.txt"


def test_table4_matches_the_paper_text():
    text = EXCERPT.read_text(encoding="utf-8")
    block = text[text.index("Methods Sensible. Specific. MM Relevant. Quality"):]
    lines = [ln for ln in block.splitlines()[1:] if re.search(r"(\s\d\.\d\d){4}\s*$", ln)]
    assert [ln.rsplit(None, 4)[0] for ln in lines] == list(TABLE4_ROWS)
    for line in lines:
        name, *values = line.rsplit(None, 4)
        assert [float(v) for v in values] == [TABLE4[name][c] for c in TABLE4_CRITERIA], name
    assert "yields a value of 0.52" in text and TABLE4_KAPPA == 0.52
    assert "from 1 point (worst) to 5 points" in text and TABLE4_SCALE == (1, 5)
    assert "generation results of 100 dialogues" in text and TABLE4_DIALOGUES == 100
    assert "ask three annotators" in text and TABLE4_ANNOTATORS == 3


def test_figure2b_matches_the_paper_text():
    text = " ".join(EXCERPT.read_text(encoding="utf-8").split())
    assert (f"including {FIGURE2B_TIKTALK['vision']:.0f}% vision, {FIGURE2B_TIKTALK['audio']:.0f}% "
            f"audio and {FIGURE2B_TIKTALK['knowledge']:.0f}% knowledge") in text
    assert f"close to {FIGURE2B_TIKTALK['text']:.0f}%" in text
    assert f"{FIGURE2B_RESPONSES:,} responses in the {FIGURE2B_VIDEOS} sampled videos" in text


def test_thumbnails_from_videos_and_back(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    write_video(videos / "111.mp4", duration=2.0, fps=10, width=64, height=48, audio=False)
    (videos / "222.mp4").write_bytes(b"not a video")
    problems = extract_thumbnails(["111", "222", "333"], [videos], tmp_path / "frames", n_frames=4, height=24)
    assert set(problems) == {"222", "333"} and "no video file" in problems["333"]
    files = sorted((tmp_path / "frames" / "111").iterdir())
    assert [p.name for p in files] == ["0.jpg", "1.jpg", "2.jpg", "3.jpg"]
    from PIL import Image

    with Image.open(files[0]) as im:
        assert im.size == (32, 24)          # the 4:3 video's aspect kept at 24 px high
    strips = load_strips(tmp_path / "frames", ["111", "222"], max_frames=3)
    assert list(strips) == ["111"] and len(strips["111"]) == 3
    assert all(u.startswith("data:image/jpeg;base64,") for u in strips["111"])
    assert load_strips(None, ["111"]) == {}


def test_page_embeds_the_strip_of_its_videos(tmp_path):
    from tiktalk.report.kit.rating_page import render_page

    strip = ["data:image/jpeg;base64,AAAA", "data:image/jpeg;base64,BBBB"]
    row = {"annotator": "a", "item": "i001", "video": "111", "level": "2", "slot": "A",
           "context": "1. hi", "response": "yo", "Q": ""}
    page = render_page(title="t", guide_html="g", columns=list(row), rows=[row], mode="scale",
                       fields=["Q"], scale=(1, 2, 3), frames={"111": strip},
                       download_name="a.csv", storage_key="k")
    assert '"frames": {"111": ["data:image/jpeg;base64,AAAA", "data:image/jpeg;base64,BBBB"]}' in page
