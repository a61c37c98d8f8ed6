# Sharded media stage: fetch videos, decode frames + audio, extract features (GPU).
# One job per shard and stage, never one per video (docs/stage-contracts.md).



rule fetch_shard:
    """Resolve and download (or link) the videos of one shard; failures recorded, not fatal."""
    input:
        # the shard's ids come in as a param, so that re-writing the manifest for an
        # unrelated change does not re-fetch every shard (mtime trigger)
        manifest=after_manifest,
        videos=demo_videos,
        code=code("media"),
    output:
        status=f"{R}/media/{{shard}}/fetch.tsv",
    params:
        video_ids=lambda w: shard_video_ids(w.shard),
        source=config["media"]["source"],
        download=config["media"]["download"],
        videos_dir=lambda w: f"{R}/media/{w.shard}/videos",
        video_id_pattern=lambda w: config["data"]["video_id_pattern"],
    priority: MEDIA_PRIORITY
    log:
        f"{R}/logs/fetch_shard/{{shard}}.log",
    benchmark:
        f"{R}/benchmarks/fetch_shard/{{shard}}.tsv"
    conda:
        "../envs/media.yaml"
    script:
        "../workflow/scripts/fetch_shard.py"


rule extract_shard:
    """Frames (<= max_frames, one decode pass) -> ResNet; audio 16 kHz -> VGGish."""
    input:
        fetch=f"{R}/media/{{shard}}/fetch.tsv",
        code=code("media"),
    output:
        features=f"{R}/media/{{shard}}.features.npz",
        status=f"{R}/media/{{shard}}.status.tsv",
    params:
        extract=config["media"]["extract"],
    threads: config["media"]["extract"].get("num_workers", 1) + 1
    priority: MEDIA_PRIORITY
    log:
        f"{R}/logs/extract_shard/{{shard}}.log",
    benchmark:
        f"{R}/benchmarks/extract_shard/{{shard}}.tsv"
    conda:
        "../envs/media.yaml"
    script:
        "../workflow/scripts/extract_shard.py"


rule image_features_shard:
    """Frozen image-encoder features for the BLIP-2 baselines (EVA-CLIP ViT-g/14 for real)."""
    input:
        fetch=f"{R}/media/{{shard}}/fetch.tsv",
        code=code("image_features"),
    output:
        features=f"{R}/media/{{shard}}.image.npz",
        status=f"{R}/media/{{shard}}.image.status.tsv",
    params:
        encoder=config["media"]["image_encoder"],
    priority: MEDIA_PRIORITY
    log:
        f"{R}/logs/image_features_shard/{{shard}}.log",
    benchmark:
        f"{R}/benchmarks/image_features_shard/{{shard}}.tsv"
    conda:
        "../envs/media.yaml"
    script:
        "../workflow/scripts/image_features_shard.py"


rule media_report:
    """Counts of ok/failed by reason per split, videos per shard, frames per video."""
    input:
        status=status_shards,
        manifest=f"{R}/data/videos.tsv",
        code=code("media_report"),
    output:
        table=report(
            f"{R}/media/report.tsv",
            category="Media",
            caption="../workflow/report/media.rst",
        ),
        shards=f"{R}/media/shards.tsv",
        frames_png=report(
            f"{R}/plots/media_frames.png",
            category="Media",
            caption="../workflow/report/media.rst",
        ),
        audio_png=report(
            f"{R}/plots/media_audio_frames.png",
            category="Media",
            caption="../workflow/report/media.rst",
        ),
    log:
        f"{R}/logs/media_report.log",
    benchmark:
        f"{R}/benchmarks/media_report.tsv"
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/media_report.py"
