# Input functions, shard lists, wildcard constraints and per-stage code inputs.
import json
import os
import re
from pathlib import Path

from tiktalk.workflow import baseline_env_name, baseline_needs, code_files, is_trained
from tiktalk.workflow import manifest_shard_ids, run_baseline, run_name, run_seed, seed_list
from tiktalk.workflow import seed_runs, uses_pipeline_tokenizer
from tiktalk.weights.spec import WeightsSpec

R = "results"
SPLITS = ["train", "val", "test"]
EVAL_SPLITS = list(config["evaluation"]["splits"])
BASELINES = list(config["baselines"])
# rows with train/predict jobs, and rows that bring their predictions (family external)
TRAINED = [b for b in BASELINES if is_trained(config["baselines"][b])]
EXTERNAL = [b for b in BASELINES if b not in TRAINED]
# Each Table 3 row is trained once per seed of `seeds` (default: [seed]); the run of the
# config's `seed` keeps the baseline's name, another seed's run is `<baseline>.seed<S>`
# (tiktalk.workflow.run_name): its train/predict/score jobs are the rules' usual jobs. An
# external row is one run.
SEEDS = seed_list(config)
SEED_RUNS = {**seed_runs(TRAINED, SEEDS, config["seed"]), **{b: [b] for b in EXTERNAL}}
SEED_RUNS = {b: SEED_RUNS[b] for b in BASELINES}
RUNS = list(dict.fromkeys(BASELINES + [r for runs in SEED_RUNS.values() for r in runs]))
TRAINED_RUNS = [r for r in RUNS if run_baseline(r) in TRAINED]
SRC = Path(workflow.basedir) / "src" / "tiktalk"
# The media jobs gate every training that reads features (the slowest rows), so among ready
# jobs they go first; trainings then start by their config `priority` (longest first).
MEDIA_PRIORITY = 100
# Pretrained weights (config `weights:`, tiktalk.weights.spec): a rule whose config holds a
# path under weights/ declares that artifact's files and verification record as inputs.
WEIGHTS = WeightsSpec.from_config(config)
WEIGHT_NAMES = "|".join(re.escape(n) for n in sorted(WEIGHTS.artifacts)) or "(?!)"


def weight_inputs(*blocks):
    """Weight files (and their verification records) that these config blocks refer to."""
    return WEIGHTS.inputs_for(*blocks)


def one_of(names):
    """A wildcard constraint matching exactly ``names``."""
    return "|".join(re.escape(n) for n in names) if names else "(?!)"


wildcard_constraints:
    split="train|val|test",
    shard=r"s\d{5}",
    baseline=one_of(RUNS),


def code(stage, family=None):
    """Package source files a stage imports (Snakemake does not track them; docs/architecture.md)."""
    return code_files(SRC, stage, family, relative_to=os.getcwd())


def release_has_val():
    """A release without val.json gets val carved from train (tiktalk.data.release.carve_val)."""
    if config["release"]["source"] == "demo":
        return True
    return (Path(config["release"]["dir"]) / "val.json").exists()


def release_file(split):
    if config["release"]["source"] == "demo":
        return f"{R}/demo/release/{split}.json"
    if split == "val" and not release_has_val():
        split = "train"
    return str(Path(config["release"]["dir"]) / f"{split}.json")


def val_from_train(wildcards):
    """The carving settings for train and val when val comes from train (None: the release's
    own val.json; always None for test)."""
    if wildcards.split == "test" or release_has_val():
        return None
    return dict(config["release"].get("val_from_train", {}))


def shards(wildcards=None):
    """Shard names, known once the manifest checkpoint has run."""
    return sorted(manifest_shard_ids(checkpoints.manifest.get().output.tsv))


def after_manifest(wildcards=None):
    """Order a job after the manifest checkpoint without making the manifest an input."""
    checkpoints.manifest.get()
    return []


def shard_video_ids(shard):
    return manifest_shard_ids(checkpoints.manifest.get().output.tsv)[shard]


def feature_shards(wildcards=None):
    return [f"{R}/media/{s}.features.npz" for s in shards()]


def status_shards(wildcards=None):
    return [f"{R}/media/{s}.status.tsv" for s in shards()]


def image_feature_shards(wildcards=None):
    """BLIP-2 image tokens: written by extract_shard with the features (one decode per video)."""
    return [f"{R}/media/{s}.image.npz" for s in shards()]


def image_features_needed():
    """Whether a baseline reads BLIP-2 image tokens: only then the image encoder joins the
    shard job's encoder chain (and its config is a param of that job)."""
    return any("image_features" in baseline_needs(baseline_cfg(b)) for b in BASELINES)


def image_views():
    """The BLIP-2 modes of the config's rows, whose views the image shards store."""
    if not image_features_needed():
        return []
    from tiktalk.media.image_tokens import MODES

    modes = {baseline_cfg(b)["params"]["model"].get("mode", "img") for b in BASELINES
             if "image_features" in baseline_needs(baseline_cfg(b))}
    return [m for m in MODES if m in modes]


def extract_outputs():
    """extract_shard's outputs: the features, the status table and, when needed, the image tokens."""
    out = {
        "features": f"{R}/media/{{shard}}.features.npz",
        "status": f"{R}/media/{{shard}}.status.tsv",
    }
    if image_features_needed():
        out["image"] = f"{R}/media/{{shard}}.image.npz"
    return out


# Feature shards made elsewhere (media.precomputed: a directory): adopted, not fetched/extracted.
PRECOMPUTED = config["media"].get("precomputed")


def precomputed_shard_files(wildcards):
    """The precomputed directory's files of one shard, by output kind (rule adopt_shard; without
    media.precomputed a directory that cannot exist, and extract_shard is preferred)."""
    where = Path(PRECOMPUTED or "media.precomputed-not-set")
    return {kind: str(where / Path(path.format(shard=wildcards.shard)).name)
            for kind, path in extract_outputs().items()}


def video_id_pattern():
    """config data.video_id_pattern, else the package's one default (tiktalk.formats)."""
    from tiktalk.formats import VIDEO_ID_PATTERN

    return config["data"].get("video_id_pattern") or VIDEO_ID_PATTERN


def coverage_gate():
    """The coverage floor's output (the coverage_floor job fails below media.min_coverage): a
    feature-reading training waits for it; ancient, so a changed floor re-runs no training."""
    return ancient(f"{R}/media/coverage.ok")


def baseline_cfg(name):
    """The baseline's config block as its jobs see it (params): everything but `priority`,
    a scheduling hint whose change must not re-run anything. ``name``: a baseline or a run."""
    return {k: v for k, v in config["baselines"][run_baseline(name)].items() if k != "priority"}


def train_priority(wildcards):
    return config["baselines"][run_baseline(wildcards.baseline)].get("priority", 0)


def job_seed(wildcards):
    """The seed a run's training and decoding use."""
    return run_seed(wildcards.baseline, config["seed"])


def llm_run(wildcards):
    """The run whose trained LLM this run builds on (``llm_from``, trained with the same seed),
    or None."""
    llm_from = baseline_cfg(wildcards.baseline).get("llm_from")
    return run_name(llm_from, job_seed(wildcards), config["seed"]) if llm_from else None


def llm_dir(wildcards):
    return f"{R}/models/{llm_run(wildcards)}" if llm_run(wildcards) else None


def baseline_env(wildcards):
    """The conda env of one baseline's train/predict/rank jobs: envs/<env>.yaml, `env:` in its
    config block, else its family's (tiktalk.families; `train`). The rows that load ChatGLM-6B
    use `llm` (its remote code needs transformers 4.33); every other row the main pins."""
    return f"../envs/{baseline_env_name(config['baselines'][run_baseline(wildcards.baseline)])}.yaml"


def baseline_weights(b):
    """Pretrained files a baseline's jobs load: those its params name, its LLM's (llm_from),
    and the pipeline tokenizer's when it reads that one (weights.smk)."""
    blocks = [b]
    if b.get("llm_from"):
        blocks.append(baseline_cfg(b["llm_from"]))
    if uses_pipeline_tokenizer(b):
        blocks.append(config["tokenizer"])
    return weight_inputs(*blocks)


def train_inputs(wildcards):
    """What one baseline's training reads: depends on its modalities (no unused inputs)."""
    b = baseline_cfg(wildcards.baseline)
    needs = baseline_needs(b)
    inputs = {
        "dialogues": [f"{R}/data/{s}.jsonl" for s in ("train", "val")],
        "code": code("train", b["family"]),
    }
    if config["tokenizer"]["kind"] == "train":
        inputs["tokenizer"] = f"{R}/tokenizer/vocab.txt"
    if "features" in needs:
        inputs["features"] = feature_shards()
    if "image_features" in needs:
        inputs["image_features"] = image_feature_shards()
    if needs & {"features", "image_features"}:
        inputs["coverage"] = coverage_gate()
    if "knowledge" in needs:
        inputs["knowledge"] = [f"{R}/knowledge/{s}.jsonl" for s in ("train", "val")]
    if b.get("llm_from"):
        inputs["llm"] = f"{llm_dir(wildcards)}/model.pt"
    if baseline_weights(b):
        inputs["weights"] = baseline_weights(b)
    return inputs


def predict_inputs(wildcards):
    b = baseline_cfg(wildcards.baseline)
    needs = baseline_needs(b)
    inputs = {
        "model": f"{R}/models/{wildcards.baseline}/model.pt",
        "dialogues": f"{R}/data/{wildcards.split}.jsonl",
        "code": code("predict", b["family"]),
    }
    if config["tokenizer"]["kind"] == "train":
        inputs["tokenizer"] = f"{R}/tokenizer/vocab.txt"
    if "features" in needs:
        inputs["features"] = feature_shards()
    if "image_features" in needs:
        inputs["image_features"] = image_feature_shards()
    if "knowledge" in needs:
        inputs["knowledge"] = f"{R}/knowledge/{wildcards.split}.jsonl"
    if b.get("llm_from"):
        inputs["llm"] = f"{llm_dir(wildcards)}/model.pt"
    if baseline_weights(b):
        inputs["weights"] = baseline_weights(b)
    return inputs


def all_outputs(wildcards=None):
    outs = [
        f"{R}/tables/table3.csv",
        f"{R}/tables/table3.md",
        f"{R}/tables/table3.tex",
        f"{R}/plots/table3.png",
        f"{R}/media/report.tsv",
        f"{R}/media/coverage.json",
        f"{R}/plots/media_frames.png",
    ]
    outs += [f"{R}/metrics/{b}/{s}.json" for b in BASELINES for s in EVAL_SPLITS]
    outs += [f"{R}/tables/claims.csv", f"{R}/tables/claims.md", f"{R}/plots/training_curves.png"]
    if config["release"]["source"] == "demo":
        outs.append(f"{R}/tables/demo_item_types.csv")
    if WEIGHTS.artifacts:  # every pretrained artifact fetched and verified (rules/weights.smk)
        outs.append(WEIGHTS.manifest_path)
    outs += HE_OUTPUTS  # rules/human_eval.smk
    outs += PT_OUTPUTS  # rules/paper_tables.smk
    return outs

def demo_videos(wildcards):
    return [f"{R}/demo/videos"] if config["release"]["source"] == "demo" else []

def c3kg_table(wildcards=None):
    if config["release"]["source"] == "demo":
        return f"{R}/demo/c3kg.tsv"
    if config["knowledge"].get("gpickle"):
        return f"{R}/knowledge/c3kg.tsv"
    return config["knowledge"]["c3kg"]
