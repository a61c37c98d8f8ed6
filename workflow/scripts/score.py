"""Rule score: the paper's metric protocol on one baseline's predictions of one split."""
from tiktalk.logs import script_logging
from tiktalk.metrics.evaluate import evaluate_files

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads, job=sm) as log:
    metrics = evaluate_files(sm.input.predictions, sm.input.references, sm.output[0],
                             protocol=sm.params.protocol)
    log.info("%s/%s: %s", sm.wildcards.baseline, sm.wildcards.split, metrics)
