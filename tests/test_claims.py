"""The claims table (tiktalk.report.claims): claims as data, verdicts from paired bootstrap
comparisons with Holm's correction, seeds, Table 4 claims from filled rating sheets."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import yaml

from annotation_sim import fill_sheets, offset_rater
from kit_fixtures import write_predictions, write_split
from tiktalk.metrics.bootstrap import Replicates
from tiktalk.report.claims import (
    HOLDS, NEEDS_RATINGS, NOT_RUN, REVERSED, UNDECIDED, across_seeds, default_claims_path,
    evaluate_claims, item_scores, load_claims, paper_check, ratings_replicates, seed_families,
    write_claims_table)
from tiktalk.report.kit.human_eval import make_sheets
from tiktalk.report.kit.settings import Scale
from tiktalk.report.paper import TABLE3, TABLE3_METRIC_KEYS, TABLE3_ROWS, TABLE4, TABLE4_ROWS

B = 400


def replicates(rows: dict[str, tuple[float, float]], keys=TABLE3_METRIC_KEYS, seed=0) -> Replicates:
    """Rows with a corpus score and a bootstrap sd on every metric; one shared noise per
    resample (the paired part) plus a small independent one, so differences are paired."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(0, 1, size=(B, len(keys)))
    runs = list(rows)
    points = np.array([[rows[r][0]] * len(keys) for r in runs])
    reps = np.stack([points[i] + shared * 2 + rng.normal(0, rows[r][1], size=(B, len(keys)))
                     for i, r in enumerate(runs)])
    return Replicates(B, 0, 100, tuple(runs), tuple(keys), points, reps)


def write_yaml(path: Path, claims: list[dict]) -> Path:
    path.write_text(yaml.safe_dump(claims, allow_unicode=True), encoding="utf-8")
    return path


def claim(cid, higher, lower, metrics="all", table=3):
    return {"id": cid, "section": "4.3", "statement": f"{cid} says so", "table": table,
            "higher": higher, "lower": lower, "metrics": metrics}


# ------------------------------------------------------------------ the claims as data


def test_the_papers_claims_load_and_agree_with_the_papers_numbers():
    """Every claim the package ships is well formed, and the paper's own Tables 3 and 4 agree
    with the direction of each of its comparisons (a few are tied in the paper's 2 decimals)."""
    claims = load_claims([default_claims_path()])
    assert len(claims) == 16 and len({c.id for c in claims}) == 16
    assert {c.table for c in claims} == {3, 4}
    for c in claims:
        rows = TABLE3_ROWS if c.table == 3 else TABLE4_ROWS
        text = paper_check(c, rows)
        agree, _, total = text.split(" (")[0].partition(" of ")
        ties = int(text.split("(")[1].split()[0]) if "tied" in text else 0
        assert int(agree) + ties == int(total) > 0, (c.id, text)
    # the ties are the paper's: Audio+text = Maria+Audio on Rouge-L, Maria+Audio = Maria on MM Relevant
    tied = {c.id for c in claims if "tied" in paper_check(c, TABLE3_ROWS if c.table == 3 else TABLE4_ROWS)}
    assert tied == {"frames_help_maria_audio", "audio_below_maria_human"}
    assert TABLE3["Audio+text"]["rouge_l"] == TABLE3["Maria+Audio"]["rouge_l"]
    assert TABLE4["Maria+Audio"]["MM Relevant"] == TABLE4["Maria"]["MM Relevant"]


@pytest.mark.parametrize("entry, message", [
    ({"higher": ["A"], "lower": ["B"], "metrics": ["BLEU-5"]}, "'BLEU-5' is not a metric of Table 3"),
    ({"higher": "others", "lower": "others"}, "cannot both be 'others'"),
    ({"higher": ["A"], "lower": ["A", "B"]}, r"rows \['A'\] are on both sides"),
    ({"higher": "A"}, "higher must be a list"),
    ({"table": 5}, "table must be 3 or 4"),
    ({"metric": "all"}, r"unknown key\(s\) \['metric'\]"),
])
def test_a_bad_claim_names_its_file_and_entry(tmp_path, entry, message):
    good = claim("ok", ["A"], ["B"])
    path = write_yaml(tmp_path / "mine.yaml", [good, {**claim("bad", ["A"], ["B"]), **entry}])
    with pytest.raises(ValueError, match=rf"mine.yaml: claim 2.*{message}"):
        load_claims([path])


def test_ids_are_unique_across_files(tmp_path):
    a = write_yaml(tmp_path / "a.yaml", [claim("x", ["A"], ["B"])])
    b = write_yaml(tmp_path / "b.yaml", [claim("x", ["B"], ["A"])])
    with pytest.raises(ValueError, match="b.yaml: claim 1: id 'x' is already used in .*a.yaml"):
        load_claims([a, b])


def test_metric_groups_and_names():
    c = load_claims([default_claims_path()])
    by_id = {x.id: x for x in c}
    assert by_id["c3kg_best_similarity"].metrics == TABLE3_METRIC_KEYS[:5]
    assert by_id["llm_best_diversity"].metrics == ("dist_2", "dist_3")
    assert by_id["livebot_poor"].metrics == TABLE3_METRIC_KEYS
    assert by_id["blip2_video_most_specific"].metrics == ("Specific",)


# ------------------------------------------------------------------ verdicts


ROWS = {"Up": (30.0, 0.3), "Down": (20.0, 0.3), "Same": (30.0, 0.3), "Twin": (30.0, 0.3)}


def verdicts(tmp_path, claims, families3, table4=None, alpha=0.05):
    parsed = load_claims([write_yaml(tmp_path / "c.yaml", claims)])
    rows, comparisons = evaluate_claims(parsed, families3, table4, alpha)
    return {r["claim"]: r for r in rows}, comparisons


def one_seed(rep):
    return {"seed 13": rep}, rep


def test_holds_reversed_not_distinguishable(tmp_path):
    rep = replicates(ROWS)
    got, comparisons = verdicts(tmp_path, [
        claim("up_beats_down", ["Up"], ["Down"]),
        claim("down_beats_up", ["Down"], ["Up"], "similarity"),
        claim("same_vs_twin", ["Same"], ["Twin"]),
        claim("up_best", ["Up"], "others", ["CIDEr"]),      # ties with Same and Twin
        claim("ghost", ["Livebot"], ["Up"]),
    ], one_seed(rep))
    assert got["up_beats_down"]["verdict"] == HOLDS
    assert got["down_beats_up"]["verdict"] == REVERSED
    assert got["same_vs_twin"]["verdict"] == UNDECIDED
    assert got["up_best"]["verdict"] == UNDECIDED
    assert got["ghost"]["verdict"] == NOT_RUN and "Livebot" in got["ghost"]["note"]
    # the table matches its comparisons: the deciding one is the least favourable
    assert got["up_beats_down"]["difference"] == pytest.approx(10.0)
    assert got["up_beats_down"]["ci_low"] > 0 and got["up_beats_down"]["parts_holding"] == "7 of 7"
    assert got["down_beats_up"]["difference"] == pytest.approx(-10.0)
    assert got["up_best"]["comparison"].startswith("Up - ") and "CIDEr" in got["up_best"]["comparison"]
    assert got["up_best"]["parts_holding"] == "1 of 3"
    # every comparison of the table: 7 + 5 + 7 + 3 = 22; the claims' p are Holm-corrected
    assert len(comparisons) == 22
    assert got["up_beats_down"]["p_holm"] >= max(c["p"] for c in comparisons if c["claim"] == "up_beats_down")


def test_a_claim_needs_every_comparison_and_holm_runs_across_claims(tmp_path):
    """A claim's p is its weakest comparison's (no correction within it); a claim at p ~ 0.02
    holds alone, and beside nine others as weak Holm's correction across the claims takes it
    back; one comparison the other way contradicts the claim (times its comparisons)."""
    rows = {"A": (10.0, 1.0), "B": (10.0 - 2.33 * np.sqrt(2), 1.0)}   # z ~ 2.33: p ~ 0.02
    rep = replicates(rows, keys=("bleu_2",), seed=3)
    alone, _ = verdicts(tmp_path, [claim("a_b", ["A"], ["B"], ["BLEU-2"])], one_seed(rep))
    assert 0.005 < alone["a_b"]["p_holm"] < 0.05 and alone["a_b"]["verdict"] == HOLDS
    many = [claim("a_b", ["A"], ["B"], ["BLEU-2"])] + [claim(f"a_b{i}", ["A"], ["B"], ["BLEU-2"])
                                                       for i in range(9)]
    crowded, _ = verdicts(tmp_path, many, one_seed(rep))
    assert crowded["a_b"]["verdict"] == UNDECIDED and crowded["a_b"]["p_holm"] > 0.05
    # many comparisons in one claim, each very significant: no correction among them
    strong = replicates(ROWS, seed=4)
    one, _ = verdicts(tmp_path, [claim("up", ["Up", "Same"], ["Down"])], one_seed(strong))
    assert one["up"]["verdict"] == HOLDS and one["up"]["parts_holding"] == "14 of 14"
    mixed, _ = verdicts(tmp_path, [claim("mixed", ["Up", "Down"], ["Same"])], one_seed(strong))
    assert mixed["mixed"]["verdict"] == REVERSED and mixed["mixed"]["comparison"].startswith("Down - Same")


def test_the_demos_own_claims_load_beside_the_papers():
    from dag_helpers import ROOT

    claims = load_claims([default_claims_path(), ROOT / "config" / "demo_claims.yaml"])
    demo = [c for c in claims if c.section == "demo"]
    assert len(demo) == 6 and all(c.table == 3 for c in demo)
    assert all(r in TABLE3_ROWS for c in demo for r in (*c.higher, *c.lower))


def test_a_claim_holds_only_on_every_seed(tmp_path):
    win = replicates(ROWS, seed=1)
    lose = replicates({**ROWS, "Up": (10.0, 0.3)}, seed=2)
    runs = {"up": ["up", "up.seed14"], "down": ["down", "down.seed14"]}
    labels = {"up": "Up", "down": "Down"}

    def families(rep13, rep14):
        merged = Replicates(B, 0, 100, ("up", "down", "up.seed14", "down.seed14"), rep13.keys,
                            np.concatenate([rep13.points[:2], rep14.points[:2]]),
                            np.concatenate([rep13.replicates[:2], rep14.replicates[:2]]))
        return seed_families(merged, runs, labels, [13, 14])

    both, _ = verdicts(tmp_path, [claim("c", ["Up"], ["Down"])], families(win, win))
    assert both["c"]["verdict"] == HOLDS and both["c"]["seeds"] == "holds on 2 of 2 seeds"
    split, _ = verdicts(tmp_path, [claim("c", ["Up"], ["Down"])], families(win, lose))
    assert split["c"]["verdict"] == UNDECIDED and split["c"]["seeds"] == "holds on 1 of 2 seeds"
    # the mean over the seeds: (10 + -10) / 2 = 0 on every metric
    assert split["c"]["difference"] == pytest.approx(0.0)
    assert across_seeds([REVERSED, REVERSED]) == REVERSED and across_seeds([HOLDS, REVERSED]) == UNDECIDED


def test_table4_claims_need_ratings(tmp_path):
    got, _ = verdicts(tmp_path, [claim("h", ["Maria+C3KG"], ["Maria"], "all", table=4)],
                      one_seed(replicates(ROWS)))
    assert got["h"]["verdict"] == NEEDS_RATINGS and got["h"]["difference"] is None


def test_table4_claims_from_filled_sheets(tmp_path):
    """Simulated annotators rate Maria+C3KG 4 and Maria 2 on every item (Livebot varies with
    the item): the claim holds, its difference is exactly 2; the reverse claim is reversed."""
    rows = write_split(tmp_path / "test.jsonl", n_videos=15)
    systems = ("c3kg", "maria", "livebot")
    preds = write_predictions(tmp_path / "predictions", rows, systems=systems)
    make_sheets(tmp_path / "test.jsonl", preds, split="test", n=24, annotators=3, seed=13,
                scale=Scale(), sheets_dir=tmp_path / "sheets", key_path=tmp_path / "key.json")

    def base(item, system, criterion):
        return {"c3kg": 4, "maria": 2}.get(system, 2 + int(item[1:]) % 3)

    fill_sheets(tmp_path / "sheets", tmp_path / "key.json", tmp_path / "filled",
                offset_rater(base, ["annotator_1", "annotator_2", "annotator_3"]))
    scores, criteria = item_scores(tmp_path / "filled", tmp_path / "key.json")
    assert scores["c3kg"].shape == (24, 4) and np.allclose(scores["c3kg"], 4)
    labels = {"c3kg": "Maria+C3KG", "maria": "Maria", "livebot": "Livebot"}
    table4 = ratings_replicates(scores, criteria, labels, 300, 0)
    got, comparisons = verdicts(tmp_path, [
        claim("c3kg_above_maria", ["Maria+C3KG"], ["Maria"], "all", table=4),
        claim("maria_above_c3kg", ["Maria"], ["Maria+C3KG"], ["Quality"], table=4),
    ], None, table4)
    assert got["c3kg_above_maria"]["verdict"] == HOLDS
    assert got["c3kg_above_maria"]["difference"] == pytest.approx(2.0)
    assert got["maria_above_c3kg"]["verdict"] == REVERSED
    assert {c["family"] for c in comparisons} == {"ratings"}


def test_write_claims_table_files(tmp_path):
    """The rule's function: the paper's claims on a run with every Table 3 row; the csv and md
    carry one row per claim, the comparisons file every comparison."""
    rows = {label: (10.0 + i, 0.05) for i, label in enumerate(TABLE3_ROWS)}
    rep = replicates(rows)
    runs = {label.lower(): [label] for label in TABLE3_ROWS}
    labels = {label.lower(): label for label in TABLE3_ROWS}
    out = [tmp_path / "claims.csv", tmp_path / "claims.md", tmp_path / "comparisons.csv"]
    got = write_claims_table([default_claims_path()], rep, runs, labels, [13], *out,
                             split="test", data_source="demo")
    with open(out[0], encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    assert [r["claim"] for r in table] == [r["claim"] for r in got]
    assert len(table) == 16
    verdict = {r["claim"]: r["verdict"] for r in table}
    # rows ordered as the paper lists them, scores rising down the list: C3KG+text is the best
    assert verdict["c3kg_text_above_maria"] == HOLDS        # 10 + 10 > 10 + 5
    assert verdict["livebot_poor"] == REVERSED              # Livebot (12) beats DialoGPT (10)
    assert all(verdict[c] == NEEDS_RATINGS for c in verdict if c.endswith("human") or
               c in ("blip2_video_most_specific", "chatglm_above_dialogpt", "blip2_video_above_img"))
    md = out[1].read_text(encoding="utf-8")
    assert md.count("\n| ") == 1 + 16 and "docs/claims.md" in md and "**holds**" in md
    with open(out[2], encoding="utf-8") as f:
        comparisons = list(csv.DictReader(f))
    # 10 x 5 + 5 + 3 x 8 x 2 + 2 x 2 + 10 x 7 + 3 x 5 + 5 + 5: the Table 3 claims' comparisons
    assert len(comparisons) == 202 and {c["family"] for c in comparisons} == {"seed 13"}


def test_the_claims_job_reads_the_filled_sheets_once_configured(tmp_path):
    """A dry run of the demo DAG: the claims job's inputs are the replicates and the claim
    files; with human_eval.ratings_dir, also the filled sheets and the Table 4 key."""
    from test_human_eval_dag import demo, dry_run

    def claims_inputs(cfg):
        res = dry_run(tmp_path, cfg)
        assert res.returncode == 0, res.stderr[-3000:]
        block = res.stdout.split("rule claims:", 1)[1].split("\n\n", 1)[0]
        return next(ln for ln in block.splitlines() if ln.strip().startswith("input:"))

    plain = claims_inputs(demo())
    assert "statistics/bootstrap_test.npz" in plain and "claims.yaml" in plain and "demo_claims.yaml" in plain
    assert "key.json" not in plain
    (tmp_path / "t4").mkdir()
    (tmp_path / "t4" / "annotator_1.csv").write_text("filled\n", encoding="utf-8")
    cfg = demo()
    cfg["human_eval"]["ratings_dir"] = str(tmp_path / "t4")
    rated = claims_inputs(cfg)
    assert "t4/annotator_1.csv" in rated and "human_eval/table4/key.json" in rated
