# Release -> canonical dialogue tables, references and the sharded video manifest.


rule demo_data:
    """Generate the embedded demo release deterministically (docs/demo.md)."""
    input:
        code=code("demo"),
    output:
        release=expand(f"{R}/demo/release/{{split}}.json", split=SPLITS),
        videos=directory(f"{R}/demo/videos"),
        c3kg=f"{R}/demo/c3kg.tsv",
        item_types=f"{R}/demo/item_types.json",
        attributes=f"{R}/demo/video_attributes.json",
    params:
        demo=config.get("demo", {}),
        seed=config["seed"],
    log:
        f"{R}/logs/demo_data.log",
    benchmark:
        f"{R}/benchmarks/demo_data.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../workflow/scripts/demo_data.py"


rule build_split:
    """Validate a release file and write the canonical dialogue table (+ references for val/test)."""
    input:
        release=lambda w: release_file(w.split),
        code=code("data"),
    output:
        dialogues=f"{R}/data/{{split}}.jsonl",
        report=f"{R}/data/{{split}}.release.json",
    wildcard_constraints:
        split="train",
    params:
        video_id_pattern=lambda w: video_id_pattern(),
        fields=config["release"].get("fields", {}),
        val_from_train=val_from_train,
    log:
        f"{R}/logs/build_split/{{split}}.log",
    benchmark:
        f"{R}/benchmarks/build_split/{{split}}.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../workflow/scripts/build_split.py"


use rule build_split as build_split_with_references with:
    output:
        dialogues=f"{R}/data/{{split}}.jsonl",
        references=f"{R}/data/{{split}}_references.jsonl",
        report=f"{R}/data/{{split}}.release.json",
    wildcard_constraints:
        split="val|test",
    log:
        f"{R}/logs/build_split/{{split}}.log",
    benchmark:
        f"{R}/benchmarks/build_split/{{split}}.tsv"


checkpoint manifest:
    """One row per video (all splits), grouped into shards of `data.shard_size` videos."""
    input:
        dialogues=expand(f"{R}/data/{{split}}.jsonl", split=SPLITS),
        code=code("data"),
    output:
        tsv=f"{R}/data/videos.tsv",
    params:
        shard_size=config["data"]["shard_size"],
        video_id_pattern=lambda w: video_id_pattern(),
    # cheap, and every shard job waits for it: first among ready jobs, so that a long job
    # (a ranking of 272,800 candidates) never holds back the media stage and the trainings
    priority: MEDIA_PRIORITY
    log:
        f"{R}/logs/manifest.log",
    benchmark:
        f"{R}/benchmarks/manifest.tsv"
    conda:
        "../envs/data.yaml"
    script:
        "../workflow/scripts/manifest.py"
