"""The Figure 2(b)/(c) context-source kit: sheets, labels, shares per source and level, kappa."""

from __future__ import annotations

import csv
import json

import pytest

from annotation_sim import fill_sheets, read_blank, write_filled
from kit_fixtures import write_split
from tiktalk.report.kit import context_sources as cs
from tiktalk.report.kit.annotation import SheetError
from tiktalk.report.kit.figure2 import build_figure2
from tiktalk.report.kit.human_eval import read_scores as read_human_eval_scores
from tiktalk.report.paper import FIGURE2B_TIKTALK

SOURCES = ("vision", "audio", "text", "knowledge")
ANNOTATORS = ["annotator_1", "annotator_2"]


@pytest.fixture()
def kit(tmp_path):
    rows = write_split(tmp_path / "test.jsonl", n_videos=12, per_video=2)
    key = cs.make_sheets(tmp_path / "test.jsonl", split="test", n_videos=6, annotators=2, seed=5,
                         sheets_dir=tmp_path / "sheets", key_path=tmp_path / "key.json")
    cs.write_pages(key, tmp_path / "sheets")
    return {"dir": tmp_path, "rows": rows, "key": key, "sheets": tmp_path / "sheets",
            "key_path": tmp_path / "key.json"}


def truth(item: str, system: str, source: str) -> int:
    """A deterministic labelling: vision on even items, audio on every 4th response slot, text
    always, knowledge on odd reference numbers."""
    n, ref = int(item[1:]), int(system[3:])
    return {"vision": n % 2 == 0, "audio": (n + ref) % 4 == 0, "text": True,
            "knowledge": ref % 2 == 1}[source] * 1


def test_items_are_whole_videos_with_levels(kit):
    key = kit["key"]
    videos = {it["video_id"] for it in key["items"]}
    assert len(videos) == 6
    by_video = {}
    for r in kit["rows"]:
        by_video.setdefault(r["video_id"], []).append(r["dialogue_id"])
    assert sorted(it["dialogue_id"] for it in key["items"]) == sorted(d for v in videos for d in by_video[v])
    for it in key["items"]:
        assert it["level"] == len(it["context"]) + 1
        assert list(it["candidates"]) == [f"ref{k}" for k in range(1, 6)]
    assert all(list(key["slots"]["annotator_1"][i].values()) == [f"ref{k}" for k in range(1, 6)]
               for i in key["slots"]["annotator_1"])
    assert cs.level_name(2) == "Level-2" and cs.level_name(4) == "Level-4" and cs.level_name(9) == "Level-5+"
    with pytest.raises(ValueError):
        cs.level_name(1)


def test_shares_by_source_and_level(kit, tmp_path):
    def rate(annotator, item, system, field):
        return 0 if field == "skip" else truth(item, system, field)

    fill_sheets(kit["sheets"], kit["key_path"], tmp_path / "filled", rate)
    result = cs.score(tmp_path / "filled", kit["key_path"], tmp_path / "cs.json")
    assert cs.read_scores(tmp_path / "cs.json") == json.loads(json.dumps(result))
    with pytest.raises(ValueError, match="cs.json: not a version-1 human-eval scores file"):
        read_human_eval_scores(tmp_path / "cs.json")         # another task's file is refused
    responses = [(it["item"], s, it["level"]) for it in kit["key"]["items"] for s in it["candidates"]]
    assert result["n_responses"] == len(responses) and result["skipped"] == 0
    assert result["judgements"] == 2 * len(responses)
    for source in SOURCES:
        share = 100 * sum(truth(i, s, source) for i, s, _ in responses) / len(responses)
        assert result["shares"][source]["percent"] == pytest.approx(share)
        for level, name in ((2, "Level-2"), (3, "Level-3"), (4, "Level-4")):
            at = [(i, s) for i, s, lv in responses if lv == level]
            want = 100 * sum(truth(i, s, source) for i, s in at) / len(at) if at else None
            assert result["by_level"][name]["percent"][source] == pytest.approx(want)
        deep = [(i, s) for i, s, lv in responses if lv >= 5]
        assert result["by_level"]["Level-5+"]["n"] == 2 * len(deep)
    # annotators agree: kappa 1 where labels vary; "text" is always 1: undefined, with the reason
    assert result["kappa"]["vision"]["kappa"] == pytest.approx(1.0)
    assert result["kappa"]["text"]["kappa"] is None
    assert "one category" in result["kappa"]["text"]["undefined_reason"]
    assert json.loads((tmp_path / "cs.json").read_text())["shares"] == result["shares"]


def test_skips_leave_the_shares_and_the_kappa(kit, tmp_path):
    items = [it["item"] for it in kit["key"]["items"]]

    def rate(annotator, item, system, field):
        skipped = annotator == "annotator_2" and item == items[0]
        if field == "skip":
            return 1 if skipped else 0
        if skipped:
            return None
        # annotator 2 disagrees on vision for the second item only
        v = truth(item, system, field)
        return 1 - v if (field == "vision" and annotator == "annotator_2" and item == items[1]) else v

    fill_sheets(kit["sheets"], kit["key_path"], tmp_path / "filled", rate)
    result = cs.score(tmp_path / "filled", kit["key_path"])
    assert result["skipped"] == 5
    kept = result["judgements"] - 5
    assert result["shares"]["text"] == {"percent": 100.0, "yes": kept, "n": kept}
    k = result["kappa"]["vision"]
    assert k["n_subjects"] == result["n_responses"] - 5 and k["n_raters"] == 2
    assert k["kappa"] < 1.0


@pytest.mark.parametrize("cells, message", [
    ({"vision": "", "audio": "", "text": "", "knowledge": "", "skip": ""}, "missing labels"),
    ({"vision": "1", "skip": "1"}, "skipped, yet 'vision' is marked '1'"),
    ({"audio": "maybe"}, "label 'maybe' for 'audio' is not 0/1"),
    ({"knowledge": ""}, "missing label for 'knowledge'"),
    ({"skip": "2"}, "skip '2' is not 0/1"),
])
def test_bad_labels_name_file_and_row(kit, tmp_path, cells, message):
    fill_sheets(kit["sheets"], kit["key_path"], tmp_path / "filled",
                lambda a, i, s, f: 0 if f == "skip" else truth(i, s, f))
    path = tmp_path / "filled" / "annotator_1.csv"
    header, rows = read_blank(path)
    rows[3].update(cells)
    write_filled(path, header, rows)
    with pytest.raises(SheetError) as info:
        cs.score(tmp_path / "filled", kit["key_path"])
    assert f"{path}: row 5 (annotator 'annotator_1', item 'i001', slot 'D')" in str(info.value)
    assert message in str(info.value)


def test_yes_no_words_are_accepted(kit, tmp_path):
    words = {0: "no", 1: "Yes"}
    fill_sheets(kit["sheets"], kit["key_path"], tmp_path / "filled",
                lambda a, i, s, f: "n" if f == "skip" else words[truth(i, s, f)])
    assert cs.score(tmp_path / "filled", kit["key_path"])["shares"]["text"]["percent"] == 100.0


def test_figure2_tables_and_plot(kit, tmp_path):
    fill_sheets(kit["sheets"], kit["key_path"], tmp_path / "filled",
                lambda a, i, s, f: 0 if f == "skip" else truth(i, s, f))
    result = cs.score(tmp_path / "filled", kit["key_path"])
    out = tmp_path / "fig"
    build_figure2(result, out / "b.csv", out / "c.csv", out / "f.md", out / "f.png", data_source="demo")
    with open(out / "b.csv", encoding="utf-8") as fh:
        b = {r["source"]: r for r in csv.DictReader(fh)}
    assert list(b) == list(SOURCES)
    for s in SOURCES:
        assert float(b[s]["paper"]) == FIGURE2B_TIKTALK[s]
        assert float(b[s]["ours"]) == pytest.approx(result["shares"][s]["percent"], abs=0.05)
    assert b["text"]["kappa"] == "" and b["vision"]["kappa"] == "1.00"
    with open(out / "c.csv", encoding="utf-8") as fh:
        assert [r["level"] for r in csv.DictReader(fh)] == ["Level-2", "Level-3", "Level-4", "Level-5+"]
    md = (out / "f.md").read_text(encoding="utf-8")
    assert "| text | 100.0 |" in md and "~80" in md and "embedded demo data" in md
    assert (out / "f.png").read_bytes()[:4] == b"\x89PNG"


def test_labels_page_and_cli(kit, tmp_path):
    from tiktalk.cli import main

    page = (kit["sheets"] / "annotator_1.html").read_text(encoding="utf-8")
    assert '"mode": "labels"' in page and '"skip": "skip"' in page
    out = tmp_path / "cs"
    assert main(["context-sources", "sheet", "--dialogues", str(kit["dir"] / "test.jsonl"),
                 "--split", "test", "--n-videos", "3", "--annotators", "2", "--seed", "1",
                 "--out", str(out)]) == 0
    fill_sheets(out / "sheets", out / "key.json", tmp_path / "filled",
                lambda a, i, s, f: 0 if f == "skip" else truth(i, s, f))
    assert main(["context-sources", "score", "--ratings", str(tmp_path / "filled"), "--key",
                 str(out / "key.json"), "--out", str(tmp_path / "cs.json"), "--figure-dir",
                 str(tmp_path / "fig"), "--data-source", "demo"]) == 0
    assert {p.name for p in (tmp_path / "fig").iterdir()} == {
        "figure2b.csv", "figure2c.csv", "figure2.md", "figure2.png"}
