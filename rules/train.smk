# Tokenizer, one training job and one inference job per baseline of Table 3; a row that brings
# its own predictions (family external) gets them copied in instead.


rule train_tokenizer:
    """Demo only: a WordPiece vocabulary trained on the training dialogues and C3KG text."""
    input:
        dialogues=f"{R}/data/train.jsonl",
        c3kg=c3kg_table,
        code=code("tokenizer"),
    output:
        vocab=f"{R}/tokenizer/vocab.txt",
    params:
        tokenizer=config["tokenizer"],
    log:
        f"{R}/logs/train_tokenizer.log",
    benchmark:
        f"{R}/benchmarks/train_tokenizer.tsv"
    conda:
        "../envs/train.yaml"
    script:
        "../workflow/scripts/train_tokenizer.py"


rule train_baseline:
    """Train one baseline (GPU; DDP via torchrun when resources.gpu > 1); resumes from its
    last checkpoint when the same job is started again."""
    input:
        unpack(train_inputs),
    output:
        model=f"{R}/models/{{baseline}}/model.pt",
    wildcard_constraints:
        baseline=one_of(TRAINED_RUNS),
    params:
        baseline=lambda w: baseline_cfg(w.baseline),
        tokenizer=config["tokenizer"],
        seed=job_seed,
        llm_dir=llm_dir,
    threads: 1
    priority: train_priority
    log:
        f"{R}/logs/train_baseline/{{baseline}}.log",
    benchmark:
        f"{R}/benchmarks/train_baseline/{{baseline}}.tsv"
    conda:
        baseline_env
    script:
        "../workflow/scripts/train_baseline.py"


rule predict:
    """Decode one response per dialogue of a split."""
    input:
        unpack(predict_inputs),
    output:
        f"{R}/predictions/{{baseline}}/{{split}}.jsonl",
    wildcard_constraints:
        baseline=one_of(TRAINED_RUNS),
    params:
        baseline=lambda w: baseline_cfg(w.baseline),
        tokenizer=config["tokenizer"],
        seed=job_seed,
        llm_dir=llm_dir,
    threads: 1
    log:
        f"{R}/logs/predict/{{baseline}}_{{split}}.log",
    benchmark:
        f"{R}/benchmarks/predict/{{baseline}}_{{split}}.tsv"
    conda:
        baseline_env
    script:
        "../workflow/scripts/predict.py"


rule external_predictions:
    """A row of your own system (family external): its predictions file, checked and copied to
    where every row's predictions are scored from. Its one input is that file, so editing it
    re-scores this row alone."""
    input:
        predictions=lambda w: config["baselines"][w.baseline]["predictions"][w.split],
        code=code("external_predictions.py"),
    output:
        f"{R}/predictions/{{baseline}}/{{split}}.jsonl",
    wildcard_constraints:
        baseline=one_of(EXTERNAL),
    log:
        f"{R}/logs/external_predictions/{{baseline}}_{{split}}.log",
    benchmark:
        f"{R}/benchmarks/external_predictions/{{baseline}}_{{split}}.tsv"
    conda:
        "../envs/evaluate.yaml"
    script:
        "../workflow/scripts/external_predictions.py"
