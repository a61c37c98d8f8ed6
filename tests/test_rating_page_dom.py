"""The rating pages' own script, run under node with a fake DOM: it shows every candidate, its
controls record what the annotator picks, and "Download CSV" gives a sheet the scorer accepts
with the same result as the same ratings typed into the CSV."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from annotation_sim import fill_sheets, offset_rater
from kit_fixtures import write_predictions, write_split
from tiktalk.report import context_sources as cs
from tiktalk.report import human_eval as he
from tiktalk.report.kit_settings import Scale

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node.js not installed")
HARNESS = Path(__file__).parent / "data" / "rating_page_harness.js"


class _Scripts(HTMLParser):
    def __init__(self):
        super().__init__()
        self.scripts, self._on = [], False

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self._on = True
            self.scripts.append("")

    def handle_endtag(self, tag):
        self._on = False if tag == "script" else self._on

    def handle_data(self, data):
        if self._on:
            self.scripts[-1] += data


def run_page(page: Path, choices: dict, tmp: Path) -> dict:
    parser = _Scripts()
    parser.feed(page.read_text(encoding="utf-8"))
    data_json, script = parser.scripts
    (tmp / "page.js").write_text(script, encoding="utf-8")
    (tmp / "data.json").write_text(data_json, encoding="utf-8")
    (tmp / "choices.json").write_text(json.dumps(choices), encoding="utf-8")
    done = subprocess.run(["node", str(HARNESS), str(tmp / "page.js"), str(tmp / "data.json"),
                           str(tmp / "choices.json")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_scale_page_round_trip(tmp_path):
    rows = write_split(tmp_path / "test.jsonl")
    preds = write_predictions(tmp_path / "predictions", rows)
    key = he.make_sheets(tmp_path / "test.jsonl", preds, split="test", n=5, annotators=2, seed=3,
                         scale=Scale(), sheets_dir=tmp_path / "sheets", key_path=tmp_path / "key.json")
    he.write_pages(key, tmp_path / "sheets")
    annotators = key["annotators"]
    rate = offset_rater(lambda item, system, c: 2 + (len(system) + int(item[1:])) % 3, annotators)
    (tmp_path / "from_page").mkdir()
    for a in annotators:
        page = tmp_path / "sheets" / f"{a}.html"
        parser = _Scripts()
        parser.feed(page.read_text(encoding="utf-8"))
        data = json.loads(parser.scripts[0])
        choices = {str(i): {c: rate(a, r["item"], key["slots"][a][r["item"]][r["slot"]], c)
                            for c in data["fields"]} for i, r in enumerate(data["rows"])}
        out = run_page(page, choices, tmp_path)
        assert out["name"] == f"{a}.csv" and out["type"].startswith("text/csv")
        assert out["progress"] == f"{len(data['rows'])} / {len(data['rows'])} done"
        assert out["shown"] == [r["response"] for r in data["rows"]]
        (tmp_path / "from_page" / out["name"]).write_text(out["csv"], encoding="utf-8")
    fill_sheets(tmp_path / "sheets", tmp_path / "key.json", tmp_path / "typed", rate)
    assert he.score(tmp_path / "from_page", tmp_path / "key.json") == \
        he.score(tmp_path / "typed", tmp_path / "key.json")


def test_unfinished_page_download_is_reported_missing(tmp_path):
    rows = write_split(tmp_path / "test.jsonl")
    preds = write_predictions(tmp_path / "predictions", rows)
    key = he.make_sheets(tmp_path / "test.jsonl", preds, split="test", n=2, annotators=1, seed=3,
                         scale=Scale(), sheets_dir=tmp_path / "sheets", key_path=tmp_path / "key.json")
    he.write_pages(key, tmp_path / "sheets")
    out = run_page(tmp_path / "sheets" / "annotator_1.html", {"0": {"Sensible": 5}}, tmp_path)
    assert out["progress"] == "0 / 6 done"
    (tmp_path / "filled").mkdir()
    (tmp_path / "filled" / "annotator_1.csv").write_text(out["csv"], encoding="utf-8")
    with pytest.raises(ValueError, match=r"annotator_1.csv: row 2 .*missing rating for 'Specific'"):
        he.score(tmp_path / "filled", tmp_path / "key.json")


def test_labels_page_round_trip(tmp_path):
    write_split(tmp_path / "test.jsonl", n_videos=6, per_video=1)
    key = cs.make_sheets(tmp_path / "test.jsonl", split="test", n_videos=3, annotators=2, seed=2,
                         sheets_dir=tmp_path / "sheets", key_path=tmp_path / "key.json")
    cs.write_pages(key, tmp_path / "sheets")

    def label(annotator, item, system, field):
        n, ref = int(item[1:]), int(system[3:])
        if (n + ref + len(annotator)) % 7 == 0:
            return 1 if field == "skip" else None
        return 0 if field == "skip" else int({"vision": ref > 2, "audio": ref == 1, "text": n % 2,
                                              "knowledge": (n + ref) % 3 == 0}[field])

    (tmp_path / "from_page").mkdir()
    for a in key["annotators"]:
        parser = _Scripts()
        page = tmp_path / "sheets" / f"{a}.html"
        parser.feed(page.read_text(encoding="utf-8"))
        data = json.loads(parser.scripts[0])
        choices = {}
        for i, r in enumerate(data["rows"]):
            system = key["slots"][a][r["item"]][r["slot"]]
            if label(a, r["item"], system, "skip"):
                choices[str(i)] = {"status": "skip"}
            else:
                choices[str(i)] = {"status": "labelled",
                                   **{s: bool(label(a, r["item"], system, s)) for s in data["labels"]}}
        out = run_page(page, choices, tmp_path)
        (tmp_path / "from_page" / out["name"]).write_text(out["csv"], encoding="utf-8")
    fill_sheets(tmp_path / "sheets", tmp_path / "key.json", tmp_path / "typed", label)
    from_page = cs.score(tmp_path / "from_page", tmp_path / "key.json")
    assert from_page["skipped"] > 0
    assert from_page == cs.score(tmp_path / "typed", tmp_path / "key.json")
