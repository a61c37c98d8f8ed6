"""The Table 4 human-evaluation kit: sheets, blinding, pages, scoring, errors, Table 4, CLI."""

from __future__ import annotations

import csv
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import openpyxl
import pytest

from annotation_sim import fill_sheets, offset_rater, read_blank, write_filled
from kit_fixtures import SYSTEMS, write_predictions, write_split
from tiktalk.report.kit.annotation import SheetError
from tiktalk.report.kit.human_eval import make_sheets, read_scores, score, write_pages
from tiktalk.report.kit.settings import HumanEvalSettings, Scale, human_eval_settings, rated_baselines
from tiktalk.report.paper import TABLE4, TABLE4_KAPPA
from tiktalk.report.kit.table4 import build_table4, table4_rows
from tiktalk.settings import SettingsError

N_ITEMS = 10
ANNOTATORS = ["annotator_1", "annotator_2", "annotator_3"]


@pytest.fixture()
def kit(tmp_path):
    rows = write_split(tmp_path / "test.jsonl")
    preds = write_predictions(tmp_path / "predictions", rows)
    key = make_sheets(tmp_path / "test.jsonl", preds, split="test", n=N_ITEMS, annotators=3,
                      seed=13, scale=Scale(), sheets_dir=tmp_path / "sheets",
                      key_path=tmp_path / "key.json")
    write_pages(key, tmp_path / "sheets")
    return {"dir": tmp_path, "key": key, "rows": rows, "preds": preds,
            "sheets": tmp_path / "sheets", "key_path": tmp_path / "key.json"}


def base_rating(item: str, system: str, criterion: str) -> int:
    """Known per-system levels: good 4, bad 2, mid 2/3/4 by item (mean computed in the test)."""
    if system == "sysgood_maria":
        return 4
    if system == "sysbad_livebot":
        return 2
    return 2 + int(item[1:]) % 3


def simulate(kit, out: Path, rate=None) -> dict:
    rate = rate or offset_rater(base_rating, ANNOTATORS)
    return fill_sheets(kit["sheets"], kit["key_path"], out, rate)


# ------------------------------------------------------------------ sheets and blinding
def test_sheets_are_blinded_and_orders_differ(kit):
    key = kit["key"]
    assert [it["item"] for it in key["items"]] == [f"i{k:03d}" for k in range(1, N_ITEMS + 1)]
    for annotator in ANNOTATORS:
        for suffix in (".csv", ".html"):
            text = (kit["sheets"] / f"{annotator}{suffix}").read_text(encoding="utf-8")
            for system in SYSTEMS:
                assert system not in text, f"{annotator}{suffix} names system {system}"
            assert "dialogue_id" not in text
        header, rows = read_blank(kit["sheets"] / f"{annotator}.csv")
        assert header[-5:] == ["Sensible", "Specific", "MM Relevant", "Quality", "check"]
        assert len(rows) == N_ITEMS * len(SYSTEMS)
        assert all(r[c] == "" for r in rows for c in header[-5:-1])
        assert all(re.fullmatch("[a-z]{8}", r["check"]) for r in rows)
        assert len({r["check"] for r in rows}) == len(rows)
        book = openpyxl.load_workbook(kit["sheets"] / f"{annotator}.xlsx")
        cells = [[c.value for c in r] for r in book.worksheets[0].iter_rows()]
        assert cells[0] == header
        assert [[v or "" for v in r] for r in cells[1:]] == [[row[c] for c in header] for row in rows]
        assert not any(system in str(v) for r in cells for v in r for system in SYSTEMS)
    orders = {a: [tuple(key["slots"][a][it].values()) for it in sorted(key["slots"][a])]
              for a in ANNOTATORS}
    assert len(set(orders["annotator_1"])) > 1, "every item shows the systems in the same order"
    assert orders["annotator_1"] != orders["annotator_2"], "annotators share one order"
    assert all(sorted(o) == sorted(SYSTEMS) for a in ANNOTATORS for o in orders[a])


def test_sampling_is_seeded_and_covers_the_split(kit, tmp_path):
    again = make_sheets(kit["dir"] / "test.jsonl", kit["preds"], split="test", n=N_ITEMS,
                        annotators=3, seed=13, scale=Scale(), sheets_dir=tmp_path / "s2",
                        key_path=tmp_path / "k2.json")
    assert again == kit["key"]
    other = make_sheets(kit["dir"] / "test.jsonl", kit["preds"], split="test", n=N_ITEMS,
                        annotators=3, seed=14, scale=Scale(), sheets_dir=tmp_path / "s3",
                        key_path=tmp_path / "k3.json")
    assert [i["dialogue_id"] for i in other["items"]] != [i["dialogue_id"] for i in kit["key"]["items"]]
    with pytest.raises(ValueError, match="asked for 99 dialogues, but there are only 24"):
        make_sheets(kit["dir"] / "test.jsonl", kit["preds"], split="test", n=99, annotators=3,
                    seed=13, scale=Scale(), sheets_dir=tmp_path / "s4", key_path=tmp_path / "k4.json")


def test_missing_prediction_names_the_file(kit, tmp_path):
    path = kit["preds"]["sysbad_livebot"]
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines[:3]) + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*no prediction of system 'sysbad_livebot'"):
        make_sheets(kit["dir"] / "test.jsonl", kit["preds"], split="test", n=N_ITEMS, annotators=3,
                    seed=13, scale=Scale(), sheets_dir=tmp_path / "s", key_path=tmp_path / "k.json")


# ------------------------------------------------------------------------------ the page
class _Checker(HTMLParser):
    VOID = {"meta", "br", "img", "input", "link", "hr"}

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.scripts, self.urls = [], [], {}, []
        self._script_id = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.urls += [v for k, v in attrs.items() if k in ("src", "href") and v]
        if tag not in self.VOID:
            self.stack.append(tag)
        if tag == "script":
            self._script_id = attrs.get("id", f"inline{len(self.scripts)}")
            self.scripts[self._script_id] = ""

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()
        if tag == "script":
            self._script_id = None

    def handle_data(self, data):
        if self._script_id:
            self.scripts[self._script_id] += data


def test_page_is_valid_offline_and_holds_every_candidate(kit):
    key = kit["key"]
    for annotator in ANNOTATORS:
        text = (kit["sheets"] / f"{annotator}.html").read_text(encoding="utf-8")
        assert text.startswith("<!DOCTYPE html>")
        checker = _Checker()
        checker.feed(text)
        checker.close()
        assert not checker.errors and not checker.stack, (checker.errors, checker.stack)
        assert not checker.urls, f"the page loads external resources: {checker.urls}"
        assert "http://" not in text and "https://" not in text
        data = json.loads(checker.scripts["sheet-data"])
        assert data["download"] == f"{annotator}.csv" and data["scale"] == [1, 2, 3, 4, 5]
        shown = {(r["item"], r["response"]) for r in data["rows"]}
        for it in key["items"]:
            for response in it["candidates"].values():
                assert (it["item"], response) in shown
        header, rows = read_blank(kit["sheets"] / f"{annotator}.csv")
        assert data["columns"] == header and data["rows"] == rows, "page rows differ from the sheet"


# ----------------------------------------------------------------------------- scoring
def test_simulated_ratings_round_trip_to_the_means(kit, tmp_path):
    given = simulate(kit, tmp_path / "filled")
    result = score(tmp_path / "filled", kit["key_path"], tmp_path / "scores.json")
    assert read_scores(tmp_path / "scores.json") == json.loads(json.dumps(result))
    items = [it["item"] for it in kit["key"]["items"]]
    mid = sum(2 + int(i[1:]) % 3 for i in items) / len(items)
    expected = {"sysgood_maria": 4.0, "sysbad_livebot": 2.0, "sysmid_dialogpt": mid}
    for system, level in expected.items():
        for criterion in Scale().criteria:
            assert result["means"][system][criterion] == pytest.approx(level)
            values = [v for (a, i, s, c), v in given.items() if s == system and c == criterion]
            assert result["means"][system][criterion] == pytest.approx(sum(values) / len(values))
        assert result["n_ratings"][system] == N_ITEMS * 3
    assert result["systems"] == list(SYSTEMS) and result["annotators"] == ANNOTATORS


def test_kappa_matches_an_independent_count(kit, tmp_path):
    inter_rater = pytest.importorskip("statsmodels.stats.inter_rater")
    given = simulate(kit, tmp_path / "filled")
    result = score(tmp_path / "filled", kit["key_path"])
    criteria = Scale().criteria

    def table(crits):
        subjects = {}
        for (a, item, system, c), v in given.items():
            if c in crits:
                subjects.setdefault((c, item, system), []).append(v)
        return [[vals.count(p) for p in range(1, 6)] for vals in subjects.values()]

    for c in criteria:
        k = result["kappa"]["per_criterion"][c]
        assert k["n_subjects"] == N_ITEMS * len(SYSTEMS) and k["n_raters"] == 3
        assert k["kappa"] == pytest.approx(inter_rater.fleiss_kappa(table({c})))
    pooled = result["kappa"]["pooled"]
    assert pooled["n_subjects"] == N_ITEMS * len(SYSTEMS) * len(criteria)
    assert pooled["kappa"] == pytest.approx(inter_rater.fleiss_kappa(table(set(criteria))))


def test_agreeing_annotators_give_kappa_one_and_constant_ratings_say_undefined(kit, tmp_path):
    simulate(kit, tmp_path / "agree", rate=lambda a, i, s, c: base_rating(i, s, c))
    assert score(tmp_path / "agree", kit["key_path"])["kappa"]["pooled"]["kappa"] == pytest.approx(1.0)
    simulate(kit, tmp_path / "same", rate=lambda a, i, s, c: 3)
    k = score(tmp_path / "same", kit["key_path"])["kappa"]
    assert k["pooled"]["kappa"] is None and "one category" in k["pooled"]["undefined_reason"]


# --------------------------------------------------------------------------- bad sheets
def _filled(kit, tmp_path):
    out = tmp_path / "filled"
    simulate(kit, out)
    return out, out / "annotator_2.csv"


def _edit(path: Path, mutate) -> None:
    """Change a filled sheet's rows in place (``mutate(header, rows)``)."""
    header, rows = read_blank(path)
    mutate(header, rows)
    write_filled(path, header, rows)


def _rewrite(path: Path, make) -> None:
    """Replace a filled sheet by ``make(header, rows) -> (header, rows)``."""
    write_filled(path, *make(*read_blank(path)))


def _score_error(kit, ratings) -> str:
    with pytest.raises(SheetError) as info:
        score(ratings, kit["key_path"])
    return str(info.value)


@pytest.mark.parametrize("cell, message", [
    ("", "missing rating for 'Quality'"),
    ("7", "rating 7 for 'Quality' is off the scale 1..5"),
    ("0", "rating 0 for 'Quality' is off the scale 1..5"),
    ("4.5", "rating '4.5' for 'Quality' is not an integer"),
])
def test_bad_rating_names_file_and_row(kit, tmp_path, cell, message):
    ratings, path = _filled(kit, tmp_path)
    _edit(path, lambda h, rows: rows[4].update(Quality=cell))
    err = _score_error(kit, ratings)
    assert f"{path}: row 6 (annotator 'annotator_2', item 'i002'" in err and message in err


def test_unknown_item_and_annotator(kit, tmp_path):
    ratings, path = _filled(kit, tmp_path)
    _edit(path, lambda h, rows: (rows[0].update(item="i999"), rows[7].update(annotator="annotator_9")))
    err = _score_error(kit, ratings)
    assert f"{path}: row 2 (annotator 'annotator_2', item 'i999', slot 'A'): unknown item" in err
    assert f"{path}: row 9 (annotator 'annotator_9'" in err and "unknown annotator" in err


def test_rated_twice_names_both_rows(kit, tmp_path):
    ratings, path = _filled(kit, tmp_path)
    _edit(path, lambda h, rows: rows.append(dict(rows[2])))
    err = _score_error(kit, ratings)
    n = N_ITEMS * len(SYSTEMS) + 2
    assert f"{path}: row {n} (annotator 'annotator_2', item 'i001', slot 'C'): annotator " \
           f"'annotator_2' rated this candidate twice (first at {path}: row 4)" in err
    # the same annotator's rows spread over two files are still caught
    ratings2, path2 = _filled(kit, tmp_path / "b")
    header, rows = read_blank(path2)
    write_filled(ratings2 / "annotator_2_again.csv", header, rows[:1])
    err = _score_error(kit, ratings2)
    assert "annotator_2_again.csv: row 2" in err and f"(first at {path2}: row 2)" in err


def test_candidates_not_matching_the_key(kit, tmp_path):
    # rows are matched on annotator/item/slot; the check cell ties them to the key
    ratings, path = _filled(kit, tmp_path)
    _edit(path, lambda h, rows: (rows[1].update(check="abcdefgh"), rows[2].update(check=""),
                                 rows[3].update(slot="Z")))
    err = _score_error(kit, ratings)
    assert f"{path}: row 3 " in err and "check 'abcdefgh' does not match the key: the sheet " \
        "was made from other dialogues, predictions or seed" in err
    assert f"{path}: row 4 " in err and "the 'check' cell is empty" in err
    assert f"{path}: row 5 " in err and "the key has no slot 'Z'" in err
    # the shown texts are for the annotator: a spreadsheet may rewrite them, the row still counts
    ratings, path = _filled(kit, tmp_path / "b")
    before = score(ratings, kit["key_path"])
    _edit(path, lambda h, rows: rows[1].update(response="1/2", video="7E+18", context="", level="x"))
    assert score(ratings, kit["key_path"]) == before


def test_sheet_of_another_seed_is_caught(kit, tmp_path):
    make_sheets(kit["dir"] / "test.jsonl", kit["preds"], split="test", n=N_ITEMS, annotators=3,
                seed=14, scale=Scale(), sheets_dir=tmp_path / "other", key_path=tmp_path / "other.json")
    fill_sheets(tmp_path / "other", tmp_path / "other.json", tmp_path / "filled",
                offset_rater(base_rating, ANNOTATORS))
    err = _score_error(kit, tmp_path / "filled")
    assert "does not match the key: the sheet was made from other dialogues" in err


def test_sheet_without_check_column_is_matched_on_its_texts(kit, tmp_path):
    """Sheets written before the check column existed: video, level, context and response
    must equal the key's, as they always had to."""
    ratings, path = _filled(kit, tmp_path)
    before = score(ratings, kit["key_path"])
    for sheet in ratings.iterdir():
        _rewrite(sheet, lambda h, rows: ([c for c in h if c != "check"],
                                         [{k: v for k, v in r.items() if k != "check"} for r in rows]))
    assert score(ratings, kit["key_path"]) == before
    _edit(path, lambda h, rows: (rows[1].update(response="another system's answer"),
                                 rows[2].update(video="7.00000E+18")))
    err = _score_error(kit, ratings)
    assert f"{path}: row 3 " in err and "response differ(s) from the key" in err
    assert f"{path}: row 4 " in err and "video differ(s) from the key: the video id was turned " \
        "into the number 7.00000E+18 by a spreadsheet program" in err


def test_missing_rows_column_and_annotator(kit, tmp_path):
    ratings, path = _filled(kit, tmp_path)
    _rewrite(path, lambda h, rows: (h, rows[:5] + rows[6:]))
    err = _score_error(kit, ratings)
    assert f"{path}: annotator 'annotator_2' has no row for 1 of {N_ITEMS * len(SYSTEMS)} candidates (i002/C)" in err

    ratings, path = _filled(kit, tmp_path / "b")
    _rewrite(path, lambda h, rows: ([c for c in h if c != "Specific"],
                                 [{k: v for k, v in r.items() if k != "Specific"} for r in rows]))
    assert f"{path}: row 1 (header): missing column(s) ['Specific']" in _score_error(kit, ratings)

    ratings, path = _filled(kit, tmp_path / "c")
    path.unlink()
    assert f"{ratings}: no sheet rows for annotator 'annotator_2'" in _score_error(kit, ratings)


def test_sheet_saved_in_another_encoding(kit, tmp_path):
    ratings, path = _filled(kit, tmp_path)
    path.write_bytes(path.read_text(encoding="utf-8").encode("gb18030"))
    assert f"{path}: not UTF-8 text" in _score_error(kit, ratings)


def test_no_sheets_at_all(kit, tmp_path):
    (tmp_path / "empty").mkdir()
    assert "no filled sheets" in _score_error(kit, tmp_path / "empty")


# ------------------------------------------------------------------------------ Table 4
def test_table4_beside_the_paper(kit, tmp_path):
    simulate(kit, tmp_path / "filled")
    scores = score(tmp_path / "filled", kit["key_path"])
    labels = {"sysgood_maria": "Maria+C3KG", "sysbad_livebot": "Livebot", "sysmid_dialogpt": "DialoGPT"}
    out = tmp_path / "t4"
    rows = build_table4(scores, labels, out / "t.csv", out / "t.md", out / "t.tex", data_source="demo")
    ours = [r for r in rows if r["source"] == "ours" and r["statistic"] == "mean"]
    assert [r["baseline"] for r in ours] == ["sysmid_dialogpt", "sysbad_livebot", "sysgood_maria"]
    with open(out / "t.csv", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    by = {(r["source"], r["statistic"], r["baseline"] or r["paper_row"]): r for r in table}
    assert by[("ours", "mean", "sysgood_maria")]["Sensible"] == "4.00"
    assert by[("ours", "mean", "sysbad_livebot")]["Quality"] == "2.00"
    assert float(by[("ours", "mean", "sysmid_dialogpt")]["Specific"]) == pytest.approx(
        scores["means"]["sysmid_dialogpt"]["Specific"], abs=0.005)
    for row, values in TABLE4.items():
        for c, v in values.items():
            assert by[("paper", "mean", row)][c] == f"{v:.2f}"
    assert by[("paper", "fleiss_kappa", "")]["pooled"] == f"{TABLE4_KAPPA:.2f}"
    assert by[("ours", "fleiss_kappa", "")]["pooled"] == f"{scores['kappa']['pooled']['kappa']:.2f}"
    tex = (out / "t.tex").read_text(encoding="utf-8")
    assert r"Maria+C3KG & \textbf{4.00} & \textbf{4.00} & \textbf{4.00} & \textbf{4.00} \\" in tex
    assert r"Maria+C3KG & \textbf{3.29} & 2.41 & \textbf{2.31} & \textbf{2.71} \\" in tex
    assert r"BLIP-2\_Video & 2.79 & \textbf{2.43}" in tex
    assert "demo data" in tex and "TikTalk test set" not in tex.split("Paper:")[0]
    md = (out / "t.md").read_text(encoding="utf-8")
    assert "| sysgood_maria | Maria+C3KG | 4.00 | 4.00 | 4.00 | 4.00 | 30 |" in md
    assert "Paper: 0.52" in md


def test_table4_unlabelled_runs_and_undefined_kappa(kit, tmp_path):
    simulate(kit, tmp_path / "same", rate=lambda a, i, s, c: 3)
    scores = score(tmp_path / "same", kit["key_path"])
    rows = table4_rows(scores, {"sysgood_maria": "Maria"}, all_paper_rows=False)
    assert [r["paper_row"] for r in rows if r["source"] == "paper" and r["statistic"] == "mean"] == ["Maria"]
    assert [r["baseline"] for r in rows if r["source"] == "ours" and r["statistic"] == "mean"][0] == "sysgood_maria"
    out = tmp_path / "t4"
    build_table4(scores, {}, out / "t.csv", out / "t.md", out / "t.tex", data_source="release")
    md = (out / "t.md").read_text(encoding="utf-8")
    assert "pooled undefined" in md and "all 360 ratings are in one category" in md
    assert "Fleiss' $\\kappa$ & -- & -- & -- & --" in (out / "t.tex").read_text(encoding="utf-8")


# ----------------------------------------------------------------------------- settings
def test_settings_defaults_and_errors():
    s = human_eval_settings(None)
    assert s == HumanEvalSettings() and s.n_dialogues == 100 and s.annotators == 3
    assert s.scale.points == (1, 2, 3, 4, 5) and s.scale.criteria == tuple(TABLE4["Maria"])
    s = human_eval_settings({"scale": {"low": 0, "high": 2, "criteria": ["A", "B"]}, "baselines": ["x"]})
    assert s.scale.points == (0, 1, 2) and s.baselines == ("x",)
    with pytest.raises(SettingsError, match="human_eval: unknown key 'annotator'; did you mean 'annotators'"):
        human_eval_settings({"annotator": 3})
    with pytest.raises(SettingsError, match="high .* must be above low"):
        human_eval_settings({"scale": {"low": 5, "high": 5}})
    labels = {"a": "Maria", "b": "text", "c": "Livebot"}
    assert rated_baselines(HumanEvalSettings(), labels) == ["a", "c"]
    assert rated_baselines(human_eval_settings({"baselines": ["b"]}), labels) == ["b"]
    with pytest.raises(SettingsError, match=r"human_eval.baselines: \['zz'\] are not baselines"):
        rated_baselines(human_eval_settings({"baselines": ["zz"]}), labels)
    with pytest.raises(SettingsError, match="no baseline is labelled as a row of the paper's Table 4"):
        rated_baselines(HumanEvalSettings(), {"b": "text"})


# ---------------------------------------------------------------------------------- CLI
def test_cli_round_trip(tmp_path):
    from tiktalk.cli import main

    rows = write_split(tmp_path / "test.jsonl")
    write_predictions(tmp_path / "predictions", rows)
    out = tmp_path / "he"
    assert main(["human-eval", "sheet", "--predictions-dir", str(tmp_path / "predictions"),
                 "--split", "test", "--dialogues", str(tmp_path / "test.jsonl"),
                 "--baselines", ",".join(SYSTEMS), "--n", "6", "--annotators", "3",
                 "--seed", "13", "--out", str(out)]) == 0
    assert sorted(p.name for p in (out / "sheets").iterdir()) == [
        f"annotator_{k}.{ext}" for k in (1, 2, 3) for ext in ("csv", "html", "xlsx")]
    fill_sheets(out / "sheets", out / "key.json", tmp_path / "filled",
                offset_rater(base_rating, ANNOTATORS))
    assert main(["human-eval", "score", "--ratings", str(tmp_path / "filled"),
                 "--key", str(out / "key.json"), "--out", str(tmp_path / "scores.json")]) == 0
    assert json.loads((tmp_path / "scores.json").read_text())["means"]["sysgood_maria"]["Quality"] == 4.0
    assert main(["human-eval", "table", "--scores", str(tmp_path / "scores.json"),
                 "--labels", "sysgood_maria=Maria,sysbad_livebot=Livebot",
                 "--data-source", "demo", "--out-dir", str(tmp_path / "tables")]) == 0
    assert {p.name for p in (tmp_path / "tables").iterdir()} == {
        "table4.csv", "table4.md", "table4.tex", "table4.png"}
    assert (tmp_path / "tables" / "table4.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # a bad sheet is a one-command error naming the file, exit status 2
    (tmp_path / "filled" / "annotator_1.csv").write_text("annotator,item\n", encoding="utf-8")
    with pytest.raises(SystemExit) as info:
        main(["human-eval", "score", "--ratings", str(tmp_path / "filled"),
              "--key", str(out / "key.json"), "--out", str(tmp_path / "x.json")])
    assert info.value.code == 2


def test_workflow_helpers_of_the_kits(tmp_path):
    from tiktalk.report.kit.settings import filled_sheet_files, kit_outputs, thumbnail_videos_dir

    local = {"kind": "local_dir", "root": "results/demo/videos"}
    assert thumbnail_videos_dir(HumanEvalSettings(), local) == "results/demo/videos"
    assert thumbnail_videos_dir(HumanEvalSettings(videos_dir="v"), {"kind": "douyin_api"}) == "v"
    assert thumbnail_videos_dir(HumanEvalSettings(), {"kind": "douyin_api"}) is None
    assert thumbnail_videos_dir(HumanEvalSettings(frames=0), local) is None
    kits = {"table4": ["a1"], "context_sources": ["a1", "a2"]}
    outs = kit_outputs(HumanEvalSettings(), "R", kits)
    assert outs == [f"R/human_eval/{kit}/sheets/{a}.{ext}" for kit, a in (
        ("table4", "a1"), ("context_sources", "a1"), ("context_sources", "a2"))
        for ext in ("csv", "xlsx", "html")]
    more = kit_outputs(HumanEvalSettings(ratings_dir="x", context_sources_dir="y"), "R", kits)
    assert set(more) - set(outs) == {"R/tables/table4.csv", "R/tables/table4.md", "R/tables/table4.tex",
                                     "R/plots/table4.png", "R/tables/figure2b.csv",
                                     "R/tables/figure2c.csv", "R/tables/figure2.md", "R/plots/figure2.png"}
    (tmp_path / "b.csv").write_text("x")
    (tmp_path / "a.CSV").write_text("x")
    (tmp_path / "c.xlsx").write_text("x")
    (tmp_path / "notes.txt").write_text("x")
    assert filled_sheet_files(str(tmp_path), "ratings_dir") == [
        str(tmp_path / n) for n in ("a.CSV", "b.csv", "c.xlsx")]
    with pytest.raises(SettingsError, match="human_eval.context_sources_dir: no filled sheets"):
        filled_sheet_files(str(tmp_path / "nope"), "context_sources_dir")
    (tmp_path / "only").mkdir()
    (tmp_path / "only" / "annotator_1.ods").write_text("x")
    with pytest.raises(SettingsError, match=r"no filled sheets \(\*.csv, \*.xlsx\) in .*only; "
                                            r"skipped: annotator_1.ods \(a .ods file, not read"):
        filled_sheet_files(str(tmp_path / "only"), "ratings_dir")
