# Pretrained weights as a stage (config block `weights:`; tiktalk.weights). Localrules: they run
# where Snakemake itself runs (a cluster's login node has the network; compute nodes need not).
# Files a user already put in weights/<name>/ are never downloaded: only verified.


localrules:
    fetch_weight,
    verify_weight,
    fetch_weights,


rule fetch_weight:
    """Download one file of an artifact (hub at its pinned revision, or its URL); check sha256."""
    output:
        f"{WEIGHTS.root}/{{name}}/{{file}}",
    wildcard_constraints:
        name=WEIGHT_NAMES,
        file=r"[^/.][^/]*(/[^/.][^/]*)*",
    params:
        # only what decides the file's bytes: pinning its sha256 later does not re-download it
        source=lambda w: WEIGHTS.source_of(w.name, w.file),
    log:
        f"{R}/logs/fetch_weight/{{name}}/{{file}}.log",
    benchmark:
        f"{R}/benchmarks/fetch_weight/{{name}}/{{file}}.tsv"
    conda:
        "../envs/weights.yaml"
    script:
        "../workflow/scripts/fetch_weight.py"


rule verify_weight:
    """Hash every file of an artifact, check the pinned sha256 (trust on first use for null)."""
    input:
        files=lambda w: WEIGHTS.files_of(w.name),
    output:
        record=WEIGHTS.record_path("{name}"),
    wildcard_constraints:
        name=WEIGHT_NAMES,
    params:
        artifact=lambda w: WEIGHTS.artifacts[w.name].to_dict(),
        strict=WEIGHTS.strict,
    log:
        f"{R}/logs/verify_weight/{{name}}.log",
    benchmark:
        f"{R}/benchmarks/verify_weight/{{name}}.tsv"
    conda:
        "../envs/weights.yaml"
    script:
        "../workflow/scripts/verify_weight.py"


rule fetch_weights:
    """Every artifact of the config fetched and verified; weights/manifest.json lists them."""
    input:
        records=[WEIGHTS.record_path(n) for n in sorted(WEIGHTS.artifacts)],
    output:
        manifest=WEIGHTS.manifest_path,
    log:
        f"{R}/logs/fetch_weights.log",
    benchmark:
        f"{R}/benchmarks/fetch_weights.tsv"
    conda:
        "../envs/weights.yaml"
    script:
        "../workflow/scripts/weights_manifest.py"
