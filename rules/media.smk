# Sharded media stage: fetch videos, decode each video ONCE, run every encoder the config asks
# for (ResNet frames, VGGish audio, BLIP-2 image tokens), then the coverage floor.
# One job per shard and stage, never one per video (docs/stage-contracts.md).
# With media.precomputed (feature shards made elsewhere) adopt_shard takes each shard's files
# instead, and nothing is fetched or decoded.

if PRECOMPUTED:

    ruleorder: adopt_shard > extract_shard

else:

    ruleorder: extract_shard > adopt_shard


rule fetch_shard:
    """Resolve and download (or link) the videos of one shard; failures recorded, not fatal.
    On a cluster it runs where the network is (the login node) unless
    media.fetch_on_login_node is false."""
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
        video_id_pattern=lambda w: video_id_pattern(),
    localrule: bool(config["media"].get("fetch_on_login_node", True))
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
    """Decode each fetched video once; frames -> ResNet, audio 16 kHz -> VGGish and, when a
    baseline needs them, frames -> the frozen BLIP-2 image encoder. Status table last."""
    input:
        fetch=f"{R}/media/{{shard}}/fetch.tsv",
        code=code("media"),
        # the ResNet / VGGish (/ BLIP-2 vision) files the config names (weights.smk)
        weights=weight_inputs(
            config["media"]["extract"], config["media"]["image_encoder"] if image_features_needed() else {}
        ),
    output:
        **extract_outputs(),
    params:
        extract=config["media"]["extract"],
        image_encoder=config["media"]["image_encoder"] if image_features_needed() else None,
        # the image shard's views: the BLIP-2 rows' modes, and the seed of each video's
        # BLIP-2_Img frame (media.image_encoder.store: views); nothing without image tokens
        seed=config["seed"] if image_features_needed() else 0,
        image_views=image_views(),
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


rule adopt_shard:
    """Precomputed features (media.precomputed): check that the shard's files hold exactly this
    manifest's videos of the shard, then link them in (status table last)."""
    input:
        unpack(precomputed_shard_files),
        code=code("media_precomputed"),
    output:
        **extract_outputs(),
    params:
        video_ids=lambda w: shard_video_ids(w.shard),
        source=PRECOMPUTED,
    localrule: True
    priority: MEDIA_PRIORITY
    log:
        f"{R}/logs/adopt_shard/{{shard}}.log",
    benchmark:
        f"{R}/benchmarks/adopt_shard/{{shard}}.tsv"
    conda:
        "../envs/media.yaml"
    script:
        "../workflow/scripts/adopt_shard.py"


rule media_coverage:
    """Per split, the share of videos with features, and the top failure reasons (a report:
    never fails for a low share)."""
    input:
        status=status_shards,
        manifest=f"{R}/data/videos.tsv",
        code=code("media_coverage"),
    output:
        json=f"{R}/media/coverage.json",
    localrule: True
    priority: MEDIA_PRIORITY
    log:
        f"{R}/logs/media_coverage.log",
    benchmark:
        f"{R}/benchmarks/media_coverage.tsv"
    conda:
        "../envs/media.yaml"
    script:
        "../workflow/scripts/media_coverage.py"


rule coverage_floor:
    """The gate before every training that reads features: fails, naming coverage.json and
    the top failure reasons, when a split is below media.min_coverage. Trainings take its
    output as an ancient() input, so changing the floor re-runs no training."""
    input:
        json=f"{R}/media/coverage.json",
        code=code("media_coverage"),
    output:
        ok=f"{R}/media/coverage.ok",
    params:
        min_coverage=config["media"].get("min_coverage", 0.95),
    localrule: True
    priority: MEDIA_PRIORITY
    log:
        f"{R}/logs/coverage_floor.log",
    benchmark:
        f"{R}/benchmarks/coverage_floor.tsv"
    conda:
        "../envs/media.yaml"
    script:
        "../workflow/scripts/coverage_floor.py"


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
