"""`tiktalk evaluate` end to end on temporary files (one METEOR JVM for the module)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tiktalk import cli
from tiktalk.formats import METRIC_KEYS
from tiktalk.io import write_jsonl

# Three dialogues with disjoint characters. Reference slot 0 equals the hypothesis, slot 1
# shares no character with any hypothesis. Per-reference protocol, derived by hand:
# slot 0: BLEU-n = METEOR = ROUGE-L = 1 and CIDEr-D = 10 (every n-gram has df < N = 3, so
# hyp and ref TF-IDF vectors are equal and non-zero for n = 1..4); slot 1: all ~0.
# Mean over the 2 slots, x100: 50, and CIDEr 500.
DATA = [
    ("v1", "今天天气真好", "红色方块"),
    ("v2", "我们去吃火锅", "听到高音"),
    ("v3", "小狗好可爱啊", "蓝色圆圈"),
]


def meteor_children() -> list[int]:
    """Live child processes of this process running the METEOR jar (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            cmd = (entry / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and b"meteor-1.5.jar" in cmd:
            found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def run_cli(tmp_path_factory):
    if shutil.which("java") is None:
        pytest.skip("METEOR needs Java")
    d = tmp_path_factory.mktemp("cli")
    write_jsonl(d / "pred.jsonl", [{"dialogue_id": i, "response": h} for i, h, _ in reversed(DATA)])
    write_jsonl(d / "refs.jsonl", [{"dialogue_id": i, "references": [h, other]} for i, h, other in DATA])
    return d


def test_evaluate_end_to_end(run_cli, capsys):
    d = run_cli
    out = d / "metrics" / "test.json"
    rc = cli.main(["evaluate", "--predictions", str(d / "pred.jsonl"),
                   "--references", str(d / "refs.jsonl"), "--out", str(out)])
    assert rc == 0
    # the METEOR JVM started for this run is gone
    if Path("/proc/self/stat").exists():
        assert meteor_children() == []
    metrics = json.loads(out.read_text(encoding="utf-8"))
    assert set(metrics) == set(METRIC_KEYS) | {"n"}
    assert metrics["n"] == 3
    for key in ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l"):
        assert metrics[key] == pytest.approx(50.0, abs=1e-6), key
    assert metrics["cider"] == pytest.approx(500.0, rel=1e-9)
    # Dist over 今天天气真好 / 我们去吃火锅 / 小狗好可爱啊: 18 unigrams, 天 and 好 repeated
    # (天天, 好 x2 across 1st/3rd) -> 16 distinct; bigrams 15 all distinct; trigrams 12
    assert metrics["dist_1"] == pytest.approx(100 * 16 / 18)
    assert metrics["dist_2"] == pytest.approx(100.0)
    assert metrics["dist_3"] == pytest.approx(100.0)
    # no temp file left next to the output
    assert [p.name for p in out.parent.iterdir()] == ["test.json"]
    # the table printed to stdout carries the same numbers
    printed = capsys.readouterr().out
    assert "(per-reference)" in printed
    assert "CIDEr      500.00" in printed
    assert "Dist-1      88.89" in printed


def test_evaluate_id_mismatch_exits_2_and_names_ids(tmp_path, capsys):
    write_jsonl(tmp_path / "pred.jsonl", [{"dialogue_id": "v1", "response": "好"},
                                          {"dialogue_id": "x9", "response": "好"}])
    write_jsonl(tmp_path / "refs.jsonl", [{"dialogue_id": "v1", "references": ["好的"]},
                                          {"dialogue_id": "v2", "references": ["是的"]}])
    out = tmp_path / "m.json"
    with pytest.raises(SystemExit) as exc:
        cli.main(["evaluate", "--predictions", str(tmp_path / "pred.jsonl"),
                  "--references", str(tmp_path / "refs.jsonl"), "--out", str(out)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "tiktalk evaluate: error:" in err and "'v2'" in err and "'x9'" in err
    assert not out.exists()


def test_evaluate_missing_file_and_bad_protocol(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["evaluate", "--predictions", str(tmp_path / "nope.jsonl"),
                  "--references", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "m.json")])
    assert exc.value.code == 2 and "nope.jsonl" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main(["evaluate", "--predictions", "p", "--references", "r", "--out", "o",
                  "--protocol", "sentence-level"])
    assert exc.value.code == 2


def test_subcommand_registry():
    assert "evaluate" in cli.SUBCOMMANDS
    with pytest.raises(ValueError, match="already registered"):
        cli.register("evaluate", "again", lambda p: None, lambda a: 0)
    with pytest.raises(SystemExit) as exc:
        cli.main([])  # a subcommand is required
    assert exc.value.code == 2


def test_console_script_help():
    script = Path(sys.executable).with_name("tiktalk")
    if not script.exists():
        pytest.skip("console script not installed (pip install -e .)")
    proc = subprocess.run([str(script), "evaluate", "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    for flag in ("--predictions", "--references", "--out", "--protocol", "all-references"):
        assert flag in proc.stdout


# ----------------------------------------------------------------------------- without Java


def _cli_without_java(tmp_path, *args):
    """`python -m tiktalk.cli ...` with a PATH on which there is no `java`."""
    empty = tmp_path / "bin-without-java"
    empty.mkdir(exist_ok=True)
    env = dict(os.environ, PATH=str(empty))
    return subprocess.run([sys.executable, "-m", "tiktalk.cli", *args], capture_output=True,
                          text=True, timeout=120, env=env, cwd=tmp_path)


def _inputs(d: Path) -> list[str]:
    write_jsonl(d / "pred.jsonl", [{"dialogue_id": i, "response": h} for i, h, _ in DATA])
    write_jsonl(d / "refs.jsonl", [{"dialogue_id": i, "references": [h, o]} for i, h, o in DATA])
    return ["evaluate", "--predictions", str(d / "pred.jsonl"), "--references", str(d / "refs.jsonl")]


def test_without_java_one_line_saying_what_to_install(tmp_path):
    out = tmp_path / "m.json"
    proc = _cli_without_java(tmp_path, *_inputs(tmp_path), "--out", str(out))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("tiktalk evaluate: error: METEOR needs Java 8+")
    assert "openjdk" in proc.stderr and "--no-meteor" in proc.stderr
    assert not out.exists()


def test_no_meteor_leaves_meteor_out(tmp_path):
    out = tmp_path / "m.json"
    proc = _cli_without_java(tmp_path, *_inputs(tmp_path), "--out", str(out), "--no-meteor")
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads(out.read_text(encoding="utf-8"))
    assert set(metrics) == (set(METRIC_KEYS) - {"meteor"}) | {"n"}   # left out, not 0
    assert "METEOR" not in proc.stdout and "BLEU-1" in proc.stdout
    # the same numbers as the hand-derived ones of test_evaluate_end_to_end
    assert metrics["bleu_4"] == pytest.approx(50.0, abs=1e-6) and metrics["cider"] == pytest.approx(500.0)
    if shutil.which("java"):   # and as a run with METEOR, but for the METEOR key
        full = tmp_path / "full.json"
        assert cli.main([*_inputs(tmp_path), "--out", str(full)]) == 0
        with_meteor = json.loads(full.read_text(encoding="utf-8"))
        assert {k: v for k, v in with_meteor.items() if k != "meteor"} == metrics


def test_version(capsys):
    import tomllib

    import tiktalk

    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    assert capsys.readouterr().out.strip() == f"tiktalk {project['version']}" == f"tiktalk {tiktalk.__version__}"
