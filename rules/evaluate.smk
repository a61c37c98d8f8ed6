# Metrics exactly as the paper computes them with nlg-eval (DESIGN.md sec. 4).


rule score:
    """BLEU-1..4, METEOR, ROUGE-L, CIDEr per reference slot averaged over the 5, Dist-1..3."""
    input:
        predictions=f"{R}/predictions/{{baseline}}/{{split}}.jsonl",
        references=f"{R}/data/{{split}}_references.jsonl",
        code=code("score"),
    output:
        f"{R}/metrics/{{baseline}}/{{split}}.json",
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
