"""The scale rehearsal's pieces: the synthetic release has the paper's counts after the real
adapter, its shards are read in place, the standardiser streams, the measurements and budgets
are read from real benchmark files, the profile asks for what the jobs need, and the plan."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from tiktalk.scale.generate import ScaleSpec, make_c3kg, make_feature_shards, make_release, paper_counts

ROOT = Path(__file__).resolve().parents[1]
FRACTION = 0.003


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("scale")
    spec = ScaleSpec(fraction=FRACTION, c3kg_triples=2000, image_views=("video",))
    videos = make_release(out, spec)
    stats = make_feature_shards(out, videos, spec)
    make_c3kg(out / "c3kg.tsv", spec)
    return out, spec, videos, stats


def test_paper_counts_at_full_size_are_table2():
    c = paper_counts(1.0)
    assert (c["train"].videos, c["train"].dialogues, c["train"].turns) == (35703, 363589, 816170)
    assert (c["val"].videos, c["val"].dialogues, c["val"].turns) == (1000, 1353, 3495)
    assert (c["test"].videos, c["test"].dialogues, c["test"].turns) == (2000, 2728, 7087)
    with pytest.raises(ValueError, match="fraction"):
        paper_counts(0)


def test_release_has_the_counts_after_the_adapter_and_the_val_carve(small):
    from tiktalk.data.release import ValCarving, release_rows

    out, spec, videos, _ = small
    want = paper_counts(FRACTION)
    assert not (out / "release" / "val.json").exists()           # the official layout
    carving = ValCarving(videos=want["val"].videos)
    got = {}
    for split in ("train", "val"):
        got[split], _ = release_rows(out / "release" / "train.json", split, val_from_train=carving)
    got["test"], _ = release_rows(out / "release" / "test.json", "test")
    for split, rows in got.items():
        assert len({r["video_id"] for r in rows}) == want[split].videos, split
        assert len(rows) == want[split].dialogues, split
        assert sum(len(r["context"]) + 1 for r in rows) == want[split].turns, split
        assert all(len(r["responses"]) == (1 if split == "train" else 5) for r in rows)
    chars = [len(t) for r in got["train"] for t in r["context"] + r["responses"]]
    assert 15.5 < np.mean(chars) < 17.5                            # paper: 16.4
    assert {v for v, (s, _) in videos.items() if s == "val"} == {r["video_id"] for r in got["val"]}


def test_shards_follow_the_manifest_and_read_in_place(small):
    from tiktalk.data.manifest import manifest_from_ids
    from tiktalk.media.image_tokens import ImageTokenIndex
    from tiktalk.media.precomputed import check_shard
    from tiktalk.media.store import FeatureStore, NpzRows
    from tiktalk.media.tables import read_status

    out, spec, videos, stats = small
    manifest = manifest_from_ids(videos, {v: s for v, (s, _) in videos.items()}, spec.shard_size)
    shards: dict[str, list[str]] = {}
    for vid, _, shard in manifest:
        shards.setdefault(shard, []).append(vid)
    assert stats["shards"] == len(shards)
    for shard, ids in shards.items():
        files = {k: out / "features" / f"{shard}.{k}.{ext}" for k, ext in
                 (("features", "npz"), ("status", "tsv"), ("image", "npz"))}
        assert check_shard(files, ids) == []
        assert check_shard(files, ids[::-1])[0].endswith(f"the manifest's shard has {ids[-1]!r} there")
    store = FeatureStore(sorted((out / "features").glob("*.features.npz")))
    assert all(isinstance(r, NpzRows) for r in store._frames)      # no array of features held
    status = {r["video_id"]: r for p in (out / "features").glob("*.status.tsv") for r in read_status(p)}
    ok = [v for v, r in status.items() if r["status"] == "ok"]
    assert len(ok) == len(videos) - stats["failed"] and len(status) == len(videos)
    first = sorted(shards)[0]
    with np.load(out / "features" / f"{first}.features.npz") as z:
        i = 3
        vid = str(z["video_ids"][i])
        rows = z["frames"][z["frame_offsets"][i]:z["frame_offsets"][i + 1]]
        assert np.array_equal(store.frames(vid), rows.astype(np.float32))
        assert store.frames(vid).shape[1] == 2048 and store.audio(vid).shape[1] in (0, 128)
    index = ImageTokenIndex(sorted((out / "features").glob("*.image.npz")))
    tokens = index.video_tokens(ok[0], "video", 8, spec.seed)
    assert tokens.shape == (257, 1408) and index.views == ("video",)


def test_adopted_shards_are_links_not_copies_and_foreign_shards_are_refused(small, tmp_path):
    """At the release's size a copy is 36 GB more on the disk (the first full-size run filled
    it): adopting links the files, and a shard made for another manifest is an error."""
    from tiktalk.media.precomputed import adopt_shard, shard_video_ids

    out, _, _, _ = small
    kinds = {"features": "features.npz", "status": "status.tsv", "image": "image.npz"}
    files = {k: out / "features" / f"s00000.{ext}" for k, ext in kinds.items()}
    dest = {k: tmp_path / "media" / f"s00000.{ext}" for k, ext in kinds.items()}
    ids = shard_video_ids(files["features"])
    adopt_shard(files, dest, ids)
    for k in kinds:
        assert dest[k].stat().st_ino == files[k].stat().st_ino       # the same file, linked
    assert not list((tmp_path / "media").glob(".*.tmp"))
    with pytest.raises(ValueError, match="does not match this run's manifest"):
        adopt_shard(files, {k: tmp_path / "other" / v for k, v in kinds.items()}, ids[1:])
    assert not (tmp_path / "other" / "s00000.status.tsv").exists()


def test_standardiser_streams_and_equals_the_concatenated_statistics():
    """One pass, float64 accumulators: the same mean/std as concatenating every example's
    rows (a video with weight w counts as w examples), and memory that does not hold them."""
    import torch

    from tiktalk.models.features import FeatureStandardizer

    rng = np.random.default_rng(0)
    videos = [rng.normal(3.0, 0.01 + j, (rng.integers(1, 9), 16)).astype(np.float16) for j in range(20)]
    videos[4] = np.zeros((0, 16), np.float16)                       # a failed video
    weights = [int(w) for w in rng.integers(1, 6, len(videos))]
    concat = np.concatenate([np.repeat(v.astype(np.float64), w, axis=0) for v, w in zip(videos, weights)])
    norm = FeatureStandardizer(16)
    n = norm.fit(iter(videos), weights=weights)                     # a generator: one pass
    assert n == len(concat)
    torch.testing.assert_close(norm.mean, torch.from_numpy(concat.mean(0)).float(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(norm.std, torch.from_numpy(concat.std(0)).float(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="dim 3"):
        norm.fit([np.zeros((2, 3))])


# -- the SLURM profile's requests ---------------------------------------------------------------
def _profile() -> dict:
    return yaml.safe_load((ROOT / "slurm/config.yaml").read_text(encoding="utf-8"))


def test_retries_grow_requests_only_up_to_the_caps_users_set():
    from tiktalk.scale.plan import eval_resource

    profile = _profile()
    blocks = [profile["default-resources"], *profile["set-resources"].values()]
    caps = {"TIKTALK_SLURM_MAX_MEM_MB": "100000", "TIKTALK_SLURM_MAX_RUNTIME_MIN": "600"}
    for block in blocks:
        for key, cap, default in (("mem_mb", 100000, 384000), ("runtime", 600, 4320)):
            if key not in block:
                continue
            grown = [eval_resource(block[key], a, env={}) for a in (1, 2, 3, 10)]
            assert grown[1] >= grown[0] and max(grown) <= default, (key, block[key])
            assert max(eval_resource(block[key], a, env=caps) for a in (1, 2, 3, 10)) <= cap


def test_the_profile_asks_for_what_the_measured_peaks_need():
    """Each rule's memory request covers 1.5 x its job's peak at TikTalk's size (the scale
    rehearsal's measurement shipped with the package, plus the real models' host memory)."""
    from tiktalk.scale.measure import read_scale_table
    from tiktalk.scale.plan import COSTS, MEASURED, build_plan, load_yaml

    measured = read_scale_table(MEASURED)
    assert max(r["fraction"] for r in measured) == 1.0
    lines = build_plan(load_yaml(ROOT / "config/tiktalk.yaml"), _profile(), load_yaml(COSTS),
                       [r for r in measured if r["fraction"] == 1.0])
    short = [(l.stage, l.asks_gb, l.ram_gb) for l in lines if l.asks_gb is not None and l.asks_gb < 1.5 * l.ram_gb]
    assert not short, f"requests below 1.5 x the measured need (stage, asks GB, needs GB): {short}"


# -- measurements and the plan ------------------------------------------------------------------
def _fake_run(root: Path, fraction: float, jobs: dict[str, tuple]) -> Path:
    """A scale run's working directory: scale.json, one Snakemake benchmark file and one log
    (with the peak RSS line) per job ``rule/job`` -> (seconds, max_rss MB, kernel peak MB
    [, CPU seconds: default the wall seconds])."""
    from tiktalk.scale.generate import paper_counts

    run = root / f"f{fraction:g}"
    counts = {k: {"videos": v.videos, "dialogues": v.dialogues} for k, v in paper_counts(fraction).items()}
    (run).mkdir(parents=True)
    (run / "scale.json").write_text(json.dumps({"spec": {"fraction": fraction, "shard_size": 256},
                                                "counts": counts}))
    for name, (s, rss, peak, *cpu) in jobs.items():
        bench = run / "results/benchmarks" / f"{name}.tsv"
        bench.parent.mkdir(parents=True, exist_ok=True)
        bench.write_text("s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
                         f"{s}\t0:00:01\t{rss}\t0\t0\t0\t0\t0\t0\t{cpu[0] if cpu else s}\n")
        log = run / "results/logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(f"x INFO tiktalk: peak RSS: self {peak} MB, largest child 0.0 MB\n")
    return run


def test_collect_growth_and_budgets_from_benchmark_files(tmp_path):
    from tiktalk.scale.measure import check_budgets, collect_runs, growth

    families = {"maria": "maria"}
    small = _fake_run(tmp_path, 0.1, {"train_baseline/maria": (10.0, 1000.0, 900.0),
                                      "build_split/train": (2.0, 100.0, 90.0),
                                      "adopt_shard/s00000": (1.0, 30.0, 30.0)})
    large = _fake_run(tmp_path, 1.0, {"train_baseline/maria": (80.0, 4000.0, 3900.0),
                                      "build_split/train": (40.0, 900.0, 880.0),
                                      "adopt_shard/s00000": (1.0, 30.0, 30.0),
                                      "adopt_shard/s00001": (1.2, 31.0, 30.0)})
    rows = collect_runs([small, large], families)
    train = [r for r in rows if r["rule"] == "train_baseline"]
    assert [(r["fraction"], r["items"], r["family"], r["peak_self_mb"]) for r in train] == [
        (0.1, 36359, "maria", 900.0), (1.0, 363589, "maria", 3900.0)]      # train dialogues
    g = {(x["rule"], x["job"]): x for x in growth(rows)}
    assert g[("build_split", "train")]["time_exponent"] == pytest.approx(np.log(20) / np.log(10), rel=1e-3)
    assert g[("adopt_shard", "per shard")]["s"] == 1.2          # the costliest shard job
    checks = {(c["budget"], c["job"]): c for c in check_budgets(rows)}
    growth_check = checks[("training memory growth 0.1 -> 1 (MB)", "train_baseline/maria")]
    assert growth_check["value"] == 3000.0 and not growth_check["ok"]   # 10% -> 100% adds 3 GB
    assert not checks[("time exponent (data stage, CPU s)", "build_split/train")]["ok"]   # 1.30 > 1.1
    assert checks[("peak memory (MB)", "train_baseline/maria")]["ok"]


def test_a_data_stage_is_judged_on_its_cpu_time_when_both_runs_recorded_it(tmp_path):
    """Wall time beside other jobs grows with the neighbours; CPU seconds with the work. Without
    CPU seconds (a job too short for Snakemake's sampler) the wall time is what there is."""
    from tiktalk.scale.measure import check_budgets, collect_runs

    small = _fake_run(tmp_path, 0.1, {"table2": (1.3, 70.0, 70.0, 0.45 * 4), "manifest": (1.0, 50.0, 50.0, 0.1)})
    large = _fake_run(tmp_path, 1.0, {"table2": (22.6, 450.0, 450.0, 4.35 * 4), "manifest": (9.0, 400.0, 400.0, 0.0)})
    checks = {(c["budget"], c["job"]): c for c in check_budgets(collect_runs([small, large], {}))}
    table2 = checks[("time exponent (data stage, CPU s)", "table2")]
    assert table2["ok"] and table2["value"] == pytest.approx(np.log10(4.35 / 0.45), abs=1e-3)   # wall: 1.24
    manifest = checks[("time exponent (data stage, wall s)", "manifest")]
    assert manifest["ok"] and manifest["value"] == pytest.approx(np.log10(9.0), abs=1e-3)


def test_plan_gives_every_figure_a_source_and_flags_short_requests(tmp_path):
    from tiktalk.scale.plan import COSTS, build_plan, load_yaml, render_plan, wall_hours

    config = load_yaml(ROOT / "config/tiktalk.yaml")
    measured = [{"rule": "train_baseline", "job": "m", "family": "maria", "fraction": 1.0,
                 "s": 100.0, "max_rss_mb": 3000.0, "peak_self_mb": 500.0, "peak_child_mb": 2500.0}]
    profile = _profile()
    lines = build_plan(config, profile, load_yaml(COSTS), measured)
    stages = [l.stage for l in lines]
    assert stages.count("extract_shard (features, image views)") == 1
    assert sum(s.startswith("train_baseline[") for s in stages) == len(config["baselines"])
    assert all(l.sources for l in lines)
    maria = next(l for l in lines if l.stage == "train_baseline[maria]")
    assert maria.gpu_hours == pytest.approx(4 * 20 * 17.5 / 60)         # Table 7: T+I, 20 epochs
    assert any("Table 7" in s for s in maria.sources) and any("measured" in s for s in maria.sources)
    shards = next(l for l in lines if l.stage.startswith("extract_shard"))
    assert shards.jobs == 152 and 60 < shards.disk_gb < 70      # 8 GB features + 56 GB views
    one, four = wall_hours(lines, 1)["total"], wall_hours(lines, 4)["total"]
    assert four < one
    profile["set-resources"]["train_baseline"]["mem_mb"] = 1000
    text = render_plan(build_plan(config, profile, load_yaml(COSTS), measured), 2, "c", "p", "m")
    assert "(too little)" in text and "The profile asks for less memory" in text
