"""The paper's other outputs in the DAG (dry-runs of the demo config)."""
import re

import yaml

from test_dag import ROOT, demo_config, job_counts, snakemake, write_config


def _dry_run(tmp_path, cfg=None):
    path = write_config(tmp_path, cfg) if cfg is not None else ROOT / "config/config.yaml"
    res = snakemake("-n", "--cores", "2", "--directory", str(tmp_path), "--snakefile",
                    str(ROOT / "Snakefile"), "--configfile", str(path))
    assert res.returncode == 0, res.stderr[-3000:]
    return job_counts(res.stdout), res.stdout


def _inputs(stdout: str, rule: str) -> str:
    return re.search(rf"rule {rule}:\n\s+input: (.*)", stdout).group(1)


def test_every_paper_output_has_its_jobs(tmp_path):
    counts, out = _dry_run(tmp_path)
    cfg = demo_config()
    n = len(cfg["baselines"])
    assert counts["rank"] == n * len(cfg["paper_tables"]["ranking"]["splits"])   # every family scores
    for rule in ("ranking_candidates", "ranking_table", "table2", "table5", "table6", "table7",
                 "interest_clip", "figure4_cases"):
        assert counts[rule] == 1, rule
    # Table 3 leaves out the baseline that is not one of its rows (M5 of Table 7)
    table3 = _inputs(out, "table3")
    assert "metrics/maria/test.json" in table3 and "maria_audio_c3kg" not in table3
    table7 = _inputs(out, "table7")
    for b in ("text", "maria", "maria_audio", "maria_c3kg", "maria_audio_c3kg"):
        assert f"models/{b}/model.pt" in table7
    assert "models/audio_text/model.pt" not in table7


def test_table6_is_opt_in(tmp_path):
    cfg = demo_config()
    cfg["paper_tables"]["interest"] = None
    counts, _ = _dry_run(tmp_path, cfg)
    assert "table6" not in counts and "interest_clip" not in counts and counts["table5"] == 1


def test_paper_config_wants_annotations_for_table6():
    paper = yaml.safe_load((ROOT / "config/tiktalk.yaml").read_text())
    assert paper["paper_tables"]["interest"]["relevant"] == "annotations"
    assert paper["paper_tables"]["interest"]["model"].startswith("weights/")
