"""A training or decoding job's memory does not grow with the data: the scale rehearsal's DAG
run twice, on a synthetic release of 0.5% and of 1% of TikTalk's size (the paper's feature
dimensions: 50 ResNet-101 frames of 2048-d, VGGish 128-d), and every training and prediction
job's peak resident memory (the kernel's high-water mark, logged by the job) at 2x the data
must stay within 1.2x of its peak at 1x.

Reading every training example's frames into the standardiser (as the Maria family once did)
grows by ~1.5 GB between these two sizes and fails here; so does holding the features in
memory per example. Takes a couple of minutes (two small DAG runs)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tiktalk.scale.generate import ScaleSpec, make_c3kg, make_feature_shards, make_release, write_sizes_overlay
from tiktalk.scale.measure import read_peak

ROOT = Path(__file__).resolve().parents[1]
FRACTIONS = (0.005, 0.01)
ROWS = ("maria_audio_c3kg", "livebot")      # the two families that read frame features
GROWTH_LIMIT = 1.2


def _config(tmp: Path) -> Path:
    cfg = yaml.safe_load((ROOT / "config/scale.yaml").read_text(encoding="utf-8"))
    cfg["baselines"] = {b: cfg["baselines"][b] for b in ROWS}
    for b in ROWS:
        p = cfg["baselines"][b]["params"]
        p["train"].update(max_steps=3, log_every=1)
    cfg["baselines"]["maria_audio_c3kg"]["params"]["decode"].update(beam_size=1, max_len=4)
    cfg["baselines"]["livebot"]["params"]["max_len"] = 4
    cfg["knowledge"]["retriever"] = {"kind": "char_tfidf", "top_k": 5}   # no Sentence-BERT to load
    # only the pipeline's BERT is built (Table 6's Chinese-CLIP is named but never loaded)
    cfg["weights"]["artifacts"] = {k: v for k, v in cfg["weights"]["artifacts"].items()
                                   if k in ("bert-base-chinese", "chinese-clip")}
    cfg["paper_tables"]["topics"]["similarity"] = {"kind": "char_tfidf"}
    cfg["media"].pop("image_encoder")
    cfg["media"]["image_encoder"] = {"kind": "vit", "vit_config": {"image_size": 8}}   # unused: no BLIP-2 row
    path = tmp / "scale-memory.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


def _run(workdir: Path, config: Path) -> subprocess.CompletedProcess:
    targets = [f"results/models/{b}/model.pt" for b in ROWS] + [f"results/predictions/{b}/test.jsonl" for b in ROWS]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    return subprocess.run([sys.executable, "-m", "snakemake", *targets, "--cores", "2", "-d", str(workdir),
                           "-s", str(ROOT / "Snakefile"), "--configfile", str(config),
                           str(workdir / "sizes.yaml")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def peaks(tmp_path_factory):
    from tiktalk.rehearsal.weights import build_rehearsal_weights

    tmp = tmp_path_factory.mktemp("scale-memory")
    build_rehearsal_weights(tmp / "weights", names=["bert-base-chinese"])
    config = _config(tmp)
    out = {}
    for f in FRACTIONS:
        work = tmp / f"f{f:g}"
        spec = ScaleSpec(fraction=f, c3kg_triples=5000)
        make_feature_shards(work, make_release(work, spec), spec)
        make_c3kg(work / "c3kg.tsv", spec)
        write_sizes_overlay(work / "sizes.yaml", f)
        shutil.copytree(tmp / "weights", work / "weights")
        res = _run(work, config)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
        logs = work / "results" / "logs"
        out[f] = {job: read_peak(logs / job) for job in
                  [f"train_baseline/{b}.log" for b in ROWS] + [f"predict/{b}_test.log" for b in ROWS]}
        assert all((work / "results/benchmarks" / Path(j).with_suffix(".tsv")).exists() for j in out[f])
    return out


@pytest.mark.parametrize("job", [f"train_baseline/{b}.log" for b in ROWS] + [f"predict/{b}_test.log" for b in ROWS])
def test_job_memory_does_not_grow_with_the_data(peaks, job):
    small, large = (sum(peaks[f][job]) for f in FRACTIONS)
    assert small == small and large == large, f"{job}: no peak RSS line in the log"
    assert large <= GROWTH_LIMIT * small, (
        f"{job}: peak RSS {small:.0f} MB at {FRACTIONS[0]:g} of TikTalk's size, {large:.0f} MB at "
        f"{FRACTIONS[1]:g}: it grows with the data")
