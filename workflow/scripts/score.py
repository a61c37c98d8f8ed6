"""Rule score: the paper's metric protocol on every baseline's predictions of one split."""
from tiktalk.logs import script_logging
from tiktalk.metrics.evaluate import evaluate_many

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    baselines = list(sm.params.baselines)
    results = evaluate_many(dict(zip(baselines, sm.input.predictions)), sm.input.references,
                            dict(zip(baselines, sm.output)), protocol=sm.params.protocol)
    for name, metrics in results.items():
        log.info("%s/%s: %s", name, sm.wildcards.split, metrics)
