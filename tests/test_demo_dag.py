"""The whole demo DAG, end to end, in a scratch copy of the repo (slow: minutes).

One run serves several checks: every output exists, Table 3 has all eleven rows, the wiring
holds on the demo's item types, and afterwards dry-runs schedule only what a change touches.
"""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _copy_repo(dst: Path) -> Path:
    ignore = shutil.ignore_patterns(".venv", ".git", "results", ".snakemake", "__pycache__",
                                    "*.egg-info", ".pytest_cache")
    shutil.copytree(ROOT, dst, ignore=ignore)
    (dst / "results").mkdir(exist_ok=True)
    return dst


def smk(repo: Path, *args, timeout=3000):
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=repo,
                          capture_output=True, text=True, timeout=timeout)


def scheduled(repo: Path, *args) -> dict[str, int]:
    res = smk(repo, "-n", "--cores", "2", *args, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    if "Nothing to be done" in res.stdout + res.stderr:
        return {}
    counts = {}
    for line in res.stdout.split("job ", 1)[1].splitlines():
        m = re.fullmatch(r"(\w+)\s+(\d+)", line.strip())
        if m and m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    repo = _copy_repo(tmp_path_factory.mktemp("demo") / "repo")
    res = smk(repo, "--cores", "2")
    assert res.returncode == 0, (res.stdout[-3000:], res.stderr[-5000:])
    return repo


def test_all_outputs_and_table3(demo):
    cfg = yaml.safe_load((demo / "config/config.yaml").read_text())
    r = demo / "results"
    for name in ("table3.csv", "table3.md", "table3.tex", "demo_item_types.csv", "demo_wiring.csv",
                 "demo_wiring.md", "claims.csv", "claims.md", "claims_comparisons.csv"):
        assert (r / "tables" / name).stat().st_size > 0
    for png in ["table3.png", "training_curves.png", *(f"training/{b}.png" for b in cfg["baselines"])]:
        assert (r / "plots" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    table = pd.read_csv(r / "tables" / "table3.csv")
    ours = table[table["source"] == "ours"]
    rows3 = {k: b for k, b in cfg["baselines"].items() if b.get("table3", True)}   # not M5
    assert sorted(ours["baseline"]) == sorted(rows3)
    assert set(ours["paper_row"]) == {b["label"] for b in rows3.values()}
    assert len(table[table["source"] == "paper"]) == 11
    for b in cfg["baselines"]:
        m = json.loads((r / "metrics" / b / "test.json").read_text())
        preds = (r / "predictions" / b / "test.jsonl").read_text().splitlines()
        n_test = cfg["demo"]["n_videos"]["test"] * cfg["demo"]["dialogues_per_video"]["test"]
        assert m["n"] == len(preds) == n_test
        assert all(0 <= m[k] <= 100 for k in ("bleu_2", "bleu_4", "meteor", "rouge_l", "dist_2"))
    # every number with its bootstrap interval (one seed: no spread), in the csv and the md
    for col in ("BLEU-2", "BLEU-4", "Meteor", "Rouge-L", "CIDEr", "Dist-2", "Dist-3"):
        assert (ours[f"{col}_low"] <= ours[f"{col}_high"]).all(), col
        assert ours[f"{col}_sd"].isna().all()
    assert (ours["seeds"] == 1).all()
    assert re.search(r"\| \d+\.\d\d \[\d+\.\d\d, \d+\.\d\d\] \|", (r / "tables" / "table3.md").read_text())
    media = pd.read_csv(r / "media" / "report.tsv", sep="\t")
    assert media["videos"].sum() == sum(cfg["demo"]["n_videos"].values())


def holm(p):
    order = sorted(range(len(p)), key=lambda i: p[i])
    out, running = [0.0] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        out[i] = running
    return out


def test_claims_table_matches_the_data(demo):
    """Each claim's verdict follows from its comparisons (written out here again: a claim that
    needs all its comparisons has the largest of their p; one contradicted by a comparison has
    that p times its comparisons; Holm across the Table 3 claims), and the deciding difference
    is the two runs' metrics' difference. The demo's data decide which claims hold: at least
    one does and at least one does not."""
    cfg = yaml.safe_load((demo / "config/config.yaml").read_text())
    r = demo / "results"
    alpha = cfg["evaluation"]["claims"]["alpha"]
    claims = pd.read_csv(r / "tables" / "claims.csv", keep_default_na=False)
    parts = pd.read_csv(r / "tables" / "claims_comparisons.csv")
    by_label = {b["label"]: k for k, b in cfg["baselines"].items() if b.get("table3", True)}
    names = {"BLEU-2": "bleu_2", "BLEU-4": "bleu_4", "Meteor": "meteor", "Rouge-L": "rouge_l",
             "CIDEr": "cider", "Dist-2": "dist_2", "Dist-3": "dist_3"}
    metrics = {b: json.loads((r / "metrics" / b / "test.json").read_text()) for b in by_label.values()}
    table3 = claims[claims["table"] == 3]
    assert len(table3) == 16 and not (table3["verdict"] == "not run").any()
    assert (claims[claims["table"] == 4]["verdict"] == "needs ratings").all()
    tests = {}
    for claim in table3["claim"]:
        mine = parts[parts["claim"] == claim]
        if (mine["difference"] > 0).all():
            tests[claim] = ("holds", mine["p"].max())
        else:
            against = mine[mine["difference"] < 0]
            tests[claim] = ("reversed", min(1.0, against["p"].min() * len(mine)) if len(against) else 1.0)
    adjusted = dict(zip(tests, holm([p for _, p in tests.values()])))
    for row in table3.itertuples():
        direction, _ = tests[row.claim]
        want = direction if adjusted[row.claim] < alpha else "not distinguishable"
        assert row.verdict == want, (row.claim, parts[parts["claim"] == row.claim].to_string())
        assert float(row.p_holm) == pytest.approx(adjusted[row.claim], rel=1e-2, abs=1e-6)
        pair, metric = row.comparison.rsplit(", ", 1)
        higher, lower = pair.split(" - ")
        diff = metrics[by_label[higher]][names[metric]] - metrics[by_label[lower]][names[metric]]
        assert float(row.difference) == pytest.approx(diff, abs=1e-4)
        assert float(row.ci_low) <= float(row.ci_high)
    assert (table3["verdict"] == "holds").any(), table3.to_string()
    assert (table3["verdict"] != "holds").any(), table3.to_string()


def test_paper_tables_have_every_row_and_finite_values(demo):
    """Tables 2, 5, 6, 7, the ranking table and the Figure 4 page (rules/paper_tables.smk)."""
    cfg = yaml.safe_load((demo / "config/config.yaml").read_text())
    r = demo / "results"
    t2 = pd.read_csv(r / "tables" / "table2.csv")
    ours = t2[t2.source == "ours"]
    assert list(ours.split) == ["Train", "Val", "Test", "Total"]
    assert ours[["avg_v", "avg_t", "avg_l"]].notna().all().all() and (ours.avg_t >= 2).all()
    assert ours.videos.iloc[-1] == sum(cfg["demo"]["n_videos"].values())
    rank = pd.read_csv(r / "tables" / "ranking_test.csv")
    assert list(rank.baseline) == list(cfg["baselines"])
    metrics = rank[["recall_at_1", "recall_at_5", "recall_at_10", "mean_rank", "mean_best_rank"]]
    assert metrics.notna().all().all() and (metrics.abs() < 1e9).all().all()
    t5 = pd.read_csv(r / "tables" / "table5.csv")
    assert len(t5) == 10 and t5.videos.sum() == ours.videos.iloc[-1]
    t6 = pd.read_csv(r / "tables" / "table6.csv")
    assert len(t6) == 5 and t6.responses.sum() > 0 and t6.share.notna().all()
    check = re.search(r"for (\d+) of (\d+) responses", (r / "tables" / "table6.md").read_text())
    assert int(check.group(1)) >= 0.6 * int(check.group(2)), check.group(0)   # chance: 20%
    t7 = pd.read_csv(r / "tables" / "table7.csv")
    assert list(t7.row) == ["M1", "M2", "M3", "M4", "M5"]
    assert t7.minutes.notna().all() and (t7.minutes > 0).all() and t7.increase_pct.iloc[1:].notna().all()
    page = (r / "report" / "figure4.html").read_text(encoding="utf-8")
    assert all(b["label"] in page for b in cfg["baselines"].values())
    for name in ("table2", "table5", "table6", "table7", "ranking_test"):
        tex = (r / "tables" / f"{name}.tex").read_text(encoding="utf-8")
        assert r"\caption{" in tex and "(not TikTalk)" in tex, name


# The wiring (docs/demo.md): the right modality helps on the items only it can answer. Each
# relation of results/tables/demo_wiring.csv (tiktalk.report.wiring) must hold with its paired
# bootstrap 95% interval above its threshold; what a misaligned video, shard index or dropped
# feature would break.
def _wiring(demo: Path) -> pd.DataFrame:
    return pd.read_csv(demo / "results" / "tables" / "demo_wiring.csv")


def test_wiring_every_relation_holds(demo):
    from tiktalk.workflow import wiring_relations

    cfg = yaml.safe_load((demo / "config/config.yaml").read_text())
    t = _wiring(demo)
    got = {(r.item_type, r.row, r.counterpart) for r in t.itertuples() if r.relation != "text"}
    assert got == {(r[1], r[2], r[3]) for r in wiring_relations(cfg["baselines"])}, t.to_string()
    assert len(got) == 9, t.to_string()      # the paper's Table 3 rows: 5 frames, 2 audio, 2 C3KG
    # every baseline but the best on text items is compared with the best one
    assert len(t[t.relation == "text"]) == len(cfg["baselines"]) - 1
    assert (t.n >= 30).all(), t[["relation", "row", "n"]].to_string()
    print("\n" + t.to_string(index=False))
    failed = t[~t.holds]
    assert failed.empty, f"relations that do not hold:\n{failed.to_string(index=False)}"


def test_wiring_gains_vanish_with_permuted_video_features(demo, tmp_path):
    """Counterfactual: the test videos' features permuted among themselves (a seeded
    derangement); every baseline that reads them predicts again. Each frames/audio gain that
    holds must vanish: the row loses it with another video's features and then names the key
    no better than chance (tiktalk.report.wiring.counterfactual_table): the gains come from
    the right video's features, not from a leak."""
    from tiktalk.baselines.inputs import BaselineInputs
    from tiktalk.families.registry import get_family
    from tiktalk.io import read_jsonl
    from tiktalk.media.counterfactual import permute_feature_shards
    from tiktalk.report.wiring import (VIDEO_RELATIONS, ItemScores, Relation,
                                       counterfactual_table, wiring_table)
    from tiktalk.workflow import baseline_needs, family_params, wiring_relations

    cfg = yaml.safe_load((demo / "config/config.yaml").read_text())
    r = demo / "results"
    test_videos = {d["video_id"] for d in read_jsonl(r / "data" / "test.jsonl")}
    features, mapping = permute_feature_shards(sorted(r.glob("media/*.features.npz")), test_videos,
                                               tmp_path / "features", seed=cfg["seed"])
    images, same = permute_feature_shards(sorted(r.glob("media/*.image.npz")), test_videos,
                                          tmp_path / "images", seed=cfg["seed"])
    assert same == mapping and len(mapping) == len(test_videos)
    real, permuted = {}, {}
    for name, b in cfg["baselines"].items():
        real[name] = permuted[name] = r / "predictions" / name / "test.jsonl"
        needs = baseline_needs(b)
        if not needs & {"features", "image_features"}:
            continue
        llm = r / "models" / b["llm_from"] if b.get("llm_from") else None
        inputs = BaselineInputs(
            dialogues={"test": r / "data" / "test.jsonl"},
            features=features if "features" in needs else [],
            knowledge={"test": r / "knowledge" / "test.jsonl"} if "knowledge" in needs else {},
            tokenizer=r / "tokenizer", extra_features=images if "image_features" in needs else [],
            seed=cfg["seed"])
        permuted[name] = tmp_path / "predictions" / name / "test.jsonl"
        get_family(b["family"]).predict(family_params(b, llm), r / "models" / name, inputs, "test",
                                        permuted[name])
    refs, types = r / "data" / "test_references.jsonl", r / "demo" / "item_types.json"
    real_scores, permuted_scores = ItemScores(real, refs, types), ItemScores(permuted, refs, types)
    relations = [Relation(*x) for x in wiring_relations(cfg["baselines"])]
    cf = counterfactual_table(real_scores, permuted_scores, relations)
    print("\n" + cf.to_string(index=False))
    assert len(cf) == 7, cf.to_string()     # 5 frames rows, 2 audio rows
    held = {(x.item_type, x.row) for x in _wiring(demo).itertuples()
            if x.relation in VIDEO_RELATIONS and x.holds}
    assert held, "no frames/audio relation holds: nothing for the counterfactual to test"
    checked = cf[[(x.item_type, x.row) in held for x in cf.itertuples()]]
    assert len(checked) == len(held)
    kept = checked[~checked.vanishes]
    assert kept.empty, f"gains that survive permuted features:\n{kept.to_string(index=False)}"
    # the knowledge relations do not read the videos: they still hold
    t = wiring_table(permuted_scores, relations)
    knowledge = t[t.relation == "knowledge"]
    assert len(knowledge) == 2 and knowledge.holds.all(), knowledge.to_string()


def test_human_eval_kits_round_trip(demo, tmp_path):
    """The demo's blank Table 4 and Figure 2 sheets, filled by simulated annotators
    (tests/annotation_sim.py, an independent csv writer), then the DAG with the config naming
    the filled directories: Table 4 gives each rated system the mean it was given, with Fleiss'
    kappa per criterion; Figure 2 the shares of the labels given."""
    from annotation_sim import fill_sheets, offset_rater

    r = demo / "results" / "human_eval"
    key4 = json.loads((r / "table4" / "key.json").read_text(encoding="utf-8"))
    systems = key4["settings"]["systems"]

    def base(item, system, criterion):                  # 2..4, so every offset stays on 1..5
        return 2 + (systems.index(system) + key4["fields"].index(criterion)) % 3

    fill_sheets(r / "table4" / "sheets", r / "table4" / "key.json", tmp_path / "table4",
                offset_rater(base, key4["annotators"]))

    def label(annotator, item, system, field):
        return 0 if field == "skip" else sum(map(ord, f"{item}/{system}/{field}")) % 2

    given = fill_sheets(r / "context_sources" / "sheets", r / "context_sources" / "key.json",
                        tmp_path / "sources", label)
    cfg = yaml.safe_load((demo / "config/config.yaml").read_text())
    cfg["human_eval"].update(ratings_dir=str(tmp_path / "table4"),
                             context_sources_dir=str(tmp_path / "sources"))
    (tmp_path / "rated.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False))
    res = smk(demo, "--cores", "2", "results/tables/table4.csv", "results/tables/figure2b.csv",
              "results/tables/claims.csv", "--configfile", str(tmp_path / "rated.yaml"), timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]

    scores = json.loads((r / "table4_scores.json").read_text(encoding="utf-8"))
    assert sorted(scores["means"]) == sorted(systems)
    for system in systems:
        for criterion in key4["fields"]:
            assert scores["means"][system][criterion] == pytest.approx(base(None, system, criterion))
    kappas = scores["kappa"]["per_criterion"]
    assert sorted(kappas) == sorted(key4["fields"])
    assert all(k["kappa"] is not None and -1 <= k["kappa"] < 1 for k in kappas.values()), kappas
    table4 = pd.read_csv(demo / "results" / "tables" / "table4.csv")
    ours = table4[(table4.source == "ours") & (table4.statistic == "mean")].set_index("baseline")
    assert sorted(ours.index) == sorted(systems)
    for system in systems:
        assert ours.loc[system, "Quality"] == pytest.approx(base(None, system, "Quality"))

    # Table 4's claims now come from the ratings: each comparison's difference is the two
    # systems' given levels (the annotators' offsets cancel)
    labels = {b: c["label"] for b, c in cfg["baselines"].items()}
    system = {labels[s]: s for s in systems}
    claims = pd.read_csv(demo / "results" / "tables" / "claims.csv")
    assert not (claims["verdict"] == "needs ratings").any()
    parts = pd.read_csv(demo / "results" / "tables" / "claims_comparisons.csv")
    parts = parts[parts["family"] == "ratings"]
    assert len(parts) > 0
    for p in parts.itertuples():
        want = base(None, system[p.higher], p.metric) - base(None, system[p.lower], p.metric)
        assert p.difference == pytest.approx(want, abs=1e-9), p
    # back to the demo's own config (no ratings), so the run is finished again for later tests
    res = smk(demo, "--cores", "2", "results/tables/claims.csv", timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]

    sources = json.loads((r / "context_sources_scores.json").read_text(encoding="utf-8"))
    for source in ("vision", "audio", "text", "knowledge"):
        marks = [v for (_, _, _, f), v in given.items() if f == source]
        assert sources["shares"][source]["percent"] == pytest.approx(100 * sum(marks) / len(marks))
    assert (demo / "results" / "tables" / "figure2b.csv").stat().st_size > 0


def test_rerun_only_what_changed(demo):
    assert scheduled(demo) == {}, "a complete run must leave nothing to do"

    # one baseline's hyper-parameter -> that baseline only, then the tables
    cfg = yaml.safe_load((demo / "config/config.yaml").read_text())
    cfg["baselines"]["livebot"]["params"]["train"]["lr"] = 5e-4
    (demo / "changed.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True))
    got = scheduled(demo, "--configfile", "changed.yaml")
    # Livebot is rated in the human evaluation: its new responses make new Table 4 sheets, and
    # the rating pages, thumbnails and the Table 4 pages' video copies made from the keys follow
    rated = {"human_eval_sheets": 1, "human_eval_pages": 1, "annotation_frames": 1,
             "annotation_clips": 1, "context_sources_pages": 1}
    key = json.loads((demo / "results/human_eval/table4/key.json").read_text(encoding="utf-8"))
    assert {"livebot", "maria"} <= set(key["settings"]["systems"])
    tables = {"bootstrap": 1, "table3": 1, "claims": 1}
    assert got == {"train_baseline": 1, "predict": 1, "score": 1, **tables, "training_curves": 1,
                   "demo_item_types": 1, "rank": 1, "ranking_table": 1, "figure4_cases": 1,
                   **rated, "all": 1}, got

    # a scheduling hint is not a change
    cfg = yaml.safe_load((demo / "config/config.yaml").read_text())
    cfg["baselines"]["livebot"]["priority"] = 7
    cfg["baselines"]["maria"].pop("priority", None)
    (demo / "reprioritised.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False))
    assert scheduled(demo, "--configfile", "reprioritised.yaml") == {}

    # metrics code -> scoring and tables only
    path = demo / "src/tiktalk/metrics/evaluate.py"
    path.write_text(path.read_text() + "\n# edited\n")
    got = scheduled(demo)
    assert got == {"score": len(cfg["baselines"]), **tables, "demo_item_types": 1, "all": 1}, got
    smk(demo, "--cores", "2", "--touch")

    # the Maria model -> the Maria-family rows only (Table 3's six and Table 7's M5)
    path = demo / "src/tiktalk/models/maria.py"
    path.write_text(path.read_text() + "\n# edited\n")
    got = scheduled(demo)
    n_maria = sum(b["family"] == "maria" for b in cfg["baselines"].values())
    assert got == {"train_baseline": n_maria, "predict": n_maria, "score": n_maria, **tables,
                   "training_curves": 1, "demo_item_types": 1, "rank": n_maria, "ranking_table": 1,
                   "figure4_cases": 1, "table7": 1, **rated, "all": 1}, got
    smk(demo, "--cores", "2", "--touch")

    # the claims are data: editing them re-runs the claims table only
    path = demo / "src/tiktalk/resources/claims.yaml"
    path.write_text(path.read_text() + "\n# edited\n")
    assert scheduled(demo) == {"claims": 1, "all": 1}
