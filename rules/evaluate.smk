# Metrics exactly as the paper computes them with nlg-eval (docs/metric-protocol.md).


rule score:
    """BLEU-1..4, METEOR, ROUGE-L, CIDEr per reference slot averaged over the 5, Dist-1..3, of
    one baseline on one split. One job per (baseline, split): a failed baseline blocks only its
    own metrics, and a changed one is re-scored alone. Each job starts its own METEOR JVM
    (about 10 CPU s and 1.1 GB for its paraphrase table); scoring itself takes milliseconds.
    Beside the metrics: each dialogue's statistics, from which the bootstrap scores resamples
    (tiktalk.metrics.statistics)."""
    input:
        predictions=f"{R}/predictions/{{baseline}}/{{split}}.jsonl",
        references=f"{R}/data/{{split}}_references.jsonl",
        code=code("score"),
    output:
        metrics=f"{R}/metrics/{{baseline}}/{{split}}.json",
        stats=f"{R}/statistics/{{baseline}}/{{split}}.npz",
    params:
        protocol=config["evaluation"]["protocol"],
    log:
        f"{R}/logs/score/{{baseline}}_{{split}}.log",
    benchmark:
        f"{R}/benchmarks/score/{{baseline}}_{{split}}.tsv"
    conda:
        "../envs/evaluate.yaml"
    script:
        "../workflow/scripts/score.py"
