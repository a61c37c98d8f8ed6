# Metrics exactly as the paper computes them with nlg-eval (docs/metric-protocol.md).


rule score:
    """BLEU-1..4, METEOR, ROUGE-L, CIDEr per reference slot averaged over the 5, Dist-1..3, for
    every baseline of a split in one job: the METEOR JVM's start (~10 CPU s, its paraphrase
    table) is paid once per split, not once per baseline; scoring itself takes milliseconds."""
    input:
        predictions=expand(f"{R}/predictions/{{baseline}}/{{{{split}}}}.jsonl", baseline=BASELINES),
        references=f"{R}/data/{{split}}_references.jsonl",
        code=code("score"),
    output:
        expand(f"{R}/metrics/{{baseline}}/{{{{split}}}}.json", baseline=BASELINES),
    params:
        baselines=BASELINES,
        protocol=config["evaluation"]["protocol"],
    log:
        f"{R}/logs/score/{{split}}.log",
    benchmark:
        f"{R}/benchmarks/score/{{split}}.tsv"
    conda:
        "../envs/evaluate.yaml"
    script:
        "../workflow/scripts/score.py"
