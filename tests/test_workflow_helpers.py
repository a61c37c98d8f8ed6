"""DAG-time helpers: code inputs per stage, baseline needs, manifest parsing, checkpoints."""
from pathlib import Path

import pytest

from tiktalk.baselines.inputs import BaselineInputs
from tiktalk.baselines.launch import fingerprint, prepare_out_dir
from tiktalk.families.registry import families
from tiktalk.workflow import (
    baseline_needs, canonical, canonicalise_config, code_files, is_ranked, manifest_shard_ids,
    uses_pipeline_tokenizer, wiring_relations,
)

SRC = Path(__file__).resolve().parents[1] / "src" / "tiktalk"


def names(files):
    return {str(Path(f).relative_to(SRC)) for f in files}


def test_code_files_follow_imports_and_nothing_else(tmp_path):
    pkg = tmp_path / "tiktalk"
    (pkg / "metrics").mkdir(parents=True)
    (pkg / "models").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "formats.py").write_text("X = 1\n")
    (pkg / "unused.py").write_text("")
    (pkg / "metrics" / "__init__.py").write_text("")
    (pkg / "metrics" / "evaluate.py").write_text(
        "from tiktalk.formats import X\nfrom . import scorers\n"
        "def f():\n    from tiktalk.models import beam\n")
    (pkg / "metrics" / "scorers.py").write_text("import os\n")
    (pkg / "models" / "__init__.py").write_text("")
    (pkg / "models" / "beam.py").write_text("")
    got = {str(Path(f).relative_to(pkg)) for f in code_files(pkg, "score")}
    assert got == {"__init__.py", "formats.py", "metrics/__init__.py", "metrics/evaluate.py",
                   "metrics/scorers.py", "models/__init__.py", "models/beam.py"}


def test_code_files_errors():
    with pytest.raises(ValueError, match="unknown stage"):
        code_files(SRC, "nope")
    with pytest.raises(ValueError, match="needs a baseline family"):
        code_files(SRC, "train")


def test_real_stages_are_separated():
    score = names(code_files(SRC, "score"))
    assert "metrics/evaluate.py" in score
    assert not any(n.startswith(("models/", "training/")) for n in score)
    maria = names(code_files(SRC, "train", "maria"))
    assert "models/maria.py" in maria and "training/trainer.py" in maria
    assert not any(n.startswith("metrics/") for n in maria)
    livebot = names(code_files(SRC, "train", "livebot"))
    assert "models/maria.py" not in livebot


def test_stage_closures_hold_only_what_the_stage_uses():
    tokenizer = names(code_files(SRC, "tokenizer"))
    assert {"models/tokenizer_corpus.py", "knowledge/flows.py", "models/prompts.py"} <= tokenizer
    assert not tokenizer & {"knowledge/retrieve.py", "models/causal_lm.py"}
    assert not any(n.startswith(("baselines/", "training/")) for n in tokenizer)
    assert "knowledge/retrieve.py" not in names(code_files(SRC, "c3kg"))
    trained = [f for f, d in families().items() if d.trains]
    assert {"maria", "blip2"} <= set(trained)
    for family in trained:
        train = names(code_files(SRC, "train", family))
        assert f"baselines/{family}.py" in train and "baselines/launch.py" in train
        # its descriptor, and no other family's: editing a descriptor re-runs its family only
        assert {n for n in train if n.startswith("families/")} == {
            "families/__init__.py", "families/family.py", "families/registry.py",
            f"families/{family}.py"}, family
        # retrieval, scoring and the tokenizer corpus are other stages: their edits re-run
        # those stages (and what reads their outputs), not this family's code input
        assert not train & {"knowledge/retrieve.py", "metrics/evaluate.py",
                            "models/tokenizer_corpus.py"}, family
    for family in ("maria", "dialogpt", "livebot"):
        assert "models/causal_lm.py" not in names(code_files(SRC, "train", family)), family
    assert "models/causal_lm.py" in names(code_files(SRC, "train", "blip2"))


def test_baseline_inputs_survive_the_torchrun_spec(tmp_path):
    inputs = BaselineInputs(dialogues={"train": tmp_path / "train.jsonl"},
                            features=[tmp_path / "s00000.features.npz"],
                            knowledge={"train": tmp_path / "k.jsonl"}, tokenizer="bert-base-chinese",
                            extra_features=[tmp_path / "s00000.image.npz"], seed=13)
    assert BaselineInputs.from_json(inputs.to_json()) == inputs


def test_baseline_needs():
    m = lambda **kw: {"family": "maria", "params": {"model": kw}}  # noqa: E731
    assert baseline_needs(m(use_visual=True)) == {"features"}
    assert baseline_needs(m(use_visual=False, use_audio=False)) == set()
    assert baseline_needs(m(use_audio=True, use_knowledge=True)) == {"features", "knowledge"}
    assert baseline_needs({"family": "blip2"}) == {"image_features"}
    assert baseline_needs({"family": "dialogpt"}) == set()
    assert baseline_needs({"family": "livebot"}) == {"features"}
    assert baseline_needs({"family": "external", "predictions": {"test": "x"}}) == set()
    with pytest.raises(ValueError, match="unknown baseline family 'nope'; known: .*'maria'"):
        baseline_needs({"family": "nope"})


def test_uses_pipeline_tokenizer_and_ranking_from_the_descriptors():
    assert uses_pipeline_tokenizer({"family": "maria", "params": {"tokenizer": "weights/bert"}})
    assert uses_pipeline_tokenizer({"family": "dialogpt", "params": {}})
    assert not uses_pipeline_tokenizer({"family": "dialogpt", "params": {"tokenizer": "weights/g"}})
    assert uses_pipeline_tokenizer({"family": "causal_lm", "params": {"model": {}}})
    assert not uses_pipeline_tokenizer({"family": "causal_lm", "params": {"model": {"base_model": "w"}}})
    assert not uses_pipeline_tokenizer({"family": "blip2", "params": {}})
    assert not uses_pipeline_tokenizer({"family": "external"})
    assert is_ranked({"family": "livebot"}) and not is_ranked({"family": "external"})
    assert is_ranked({"family": "external", "scores": {"test": "s.jsonl"}})


def test_wiring_relations_come_from_the_families():
    """A +modality row against the row of its family that lacks only that modality; BLIP-2
    against its LLM; rows not in Table 3 stay out."""
    m = lambda v, a, k, **kw: {"family": "maria", **kw, "params": {"model": {  # noqa: E731
        "use_visual": v, "use_audio": a, "use_knowledge": k}}}
    rows = {"mv": m(True, False, False), "t": m(False, False, False), "mva": m(True, True, False),
            "mvak": m(True, True, True, table3=False), "llm": {"family": "causal_lm"},
            "b": {"family": "blip2", "llm_from": "llm"}, "d": {"family": "dialogpt"}}
    assert wiring_relations(rows) == [("frames", "visual", "mv", "t"),
                                      ("frames", "visual", "b", "llm"),
                                      ("audio", "audio", "mva", "mv")]


def test_manifest_shard_ids(tmp_path):
    p = tmp_path / "videos.tsv"
    p.write_text("video_id\tsplit\tshard\n1\ttrain\ts00000\n2\ttest\ts00000\n3\tval\ts00001\n")
    assert manifest_shard_ids(p) == {"s00000": ["1", "2"], "s00001": ["3"]}
    bad = tmp_path / "bad.tsv"
    bad.write_text("id\tsplit\n")
    with pytest.raises(ValueError, match="bad.tsv: header must be"):
        manifest_shard_ids(bad)
    unsorted = tmp_path / "unsorted.tsv"
    unsorted.write_text("video_id\tsplit\tshard\n2\ttrain\ts00000\n1\ttest\ts00000\n")
    with pytest.raises(ValueError, match="unsorted.tsv:3: video 1 is duplicated or out of id order"):
        manifest_shard_ids(unsorted)


def test_checkpoints_dropped_when_params_or_code_change(tmp_path):
    code = tmp_path / "m.py"
    code.write_text("a = 1\n")
    out = tmp_path / "model"
    fp1 = fingerprint({"lr": 1}, [code])
    assert prepare_out_dir(out, fp1) is False
    (out / "checkpoints" / "last.pt").write_bytes(b"x")
    assert prepare_out_dir(out, fp1) is True          # same run: resume
    assert prepare_out_dir(out, fingerprint({"lr": 2}, [code])) is False
    assert not (out / "checkpoints" / "last.pt").exists()
    (out / "checkpoints" / "last.pt").write_bytes(b"x")
    code.write_text("a = 2\n")
    assert prepare_out_dir(out, fingerprint({"lr": 2}, [code])) is False


def test_canonical_sorts_every_mapping_but_keeps_lists_and_the_baseline_order():
    a = {"b": {"y": 1, "x": [{"q": 1, "p": 2}]}, "a": 0}
    b = {"a": 0, "b": {"x": [{"p": 2, "q": 1}], "y": 1}}
    assert repr(canonical(a)) == repr(canonical(b))
    assert canonical({"l": [3, 1, 2]}) == {"l": [3, 1, 2]}
    cfg = {"seed": 1, "baselines": {"text": {"z": 1, "a": 2}, "maria": {"label": "Maria"}},
           "data": {"b": 1, "a": 2}}
    canonicalise_config(cfg)
    assert list(cfg["baselines"]) == ["text", "maria"]
    assert list(cfg["baselines"]["text"]) == ["a", "z"] and list(cfg["data"]) == ["a", "b"]


def test_script_jobs_are_held_to_their_threads(monkeypatch, tmp_path):
    import torch

    from tiktalk.logs import script_logging

    before = torch.get_num_threads()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    try:
        with script_logging(tmp_path / "job.log", threads=1):
            assert torch.get_num_threads() == 1
        import os

        assert os.environ["OMP_NUM_THREADS"] == "1" and os.environ["MKL_NUM_THREADS"] == "1"
        torch.set_num_threads(before)
        with script_logging(tmp_path / "job.log"):  # no threads given: left alone
            assert torch.get_num_threads() == before
    finally:
        torch.set_num_threads(before)


def _job(tmp_path, tokenizer):
    """A train/predict script's ``snakemake`` object, as far as baseline_job reads it."""
    from types import SimpleNamespace

    baseline = {"family": "causal_lm", "env": "llm", "params": {"train": {"epochs": 1}}}
    params = SimpleNamespace(baseline=baseline, llm_dir=str(tmp_path / "llm"), tokenizer=tokenizer,
                             seed=7)
    named = {"dialogues": [str(tmp_path / "train.jsonl"), str(tmp_path / "val.jsonl")],
             "model": str(tmp_path / "models" / "x" / "model.pt")}
    return SimpleNamespace(params=params, input=named, threads=1, rule="predict",
                           log=[str(tmp_path / "logs" / "predict" / "x_test.log")],
                           wildcards={"baseline": "x", "split": "test"})


def test_baseline_job_hands_the_script_its_params_inputs_and_log(tmp_path, monkeypatch):
    from tiktalk.workflow import baseline_job

    monkeypatch.delenv("TIKTALK_PYTHON_LLM", raising=False)     # no other interpreter: run here
    sm = _job(tmp_path, {"kind": "pretrained", "name": "bert-base-chinese"})
    with baseline_job(sm) as job:
        assert job.family == "causal_lm" and job.baseline is sm.params.baseline
        assert job.params == {"train": {"epochs": 1}, "llm_dir": str(tmp_path / "llm")}
        assert job.inputs.dialogues == {"train": tmp_path / "train.jsonl", "val": tmp_path / "val.jsonl"}
        assert job.inputs.tokenizer == "bert-base-chinese" and job.inputs.seed == 7
        job.log.info("decoding x on test")
    assert "decoding x on test" in (tmp_path / "logs" / "predict" / "x_test.log").read_text()
    assert not (tmp_path / "failures" / "predict" / "x_test.json").exists()   # success: no record


def test_baseline_job_records_a_failure_in_building_the_inputs(tmp_path, monkeypatch):
    import json

    from tiktalk.workflow import baseline_job

    monkeypatch.delenv("TIKTALK_PYTHON_LLM", raising=False)
    sm = _job(tmp_path, {"kind": "train"})       # a trained tokenizer, but no tokenizer input
    with pytest.raises(KeyError, match="tokenizer"):
        with baseline_job(sm):
            raise AssertionError("the job must not start")
    record = json.loads((tmp_path / "failures" / "predict" / "x_test.json").read_text())
    assert record["status"] == "failed" and record["rule"] == "predict"
    assert record["wildcards"] == {"baseline": "x", "split": "test"} and "tokenizer" in record["reason"]


def test_a_descriptor_names_what_it_reads_exactly():
    from tiktalk.families.family import Family

    with pytest.raises(ValueError, match=r"reads \['frames'\]; known products"):
        Family(name="x", reads={"frames": True})
    with pytest.raises(ValueError, match=r"reads\['features'\] must be True or a tuple"):
        Family(name="x", reads={"features": "model.use_visual"})   # a string is not a tuple
