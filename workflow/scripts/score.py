"""Rule score: the paper's metric protocol on one predictions file."""
from tiktalk.logs import script_logging
from tiktalk.metrics.evaluate import evaluate_files

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    metrics = evaluate_files(sm.input.predictions, sm.input.references, sm.output[0],
                             protocol=sm.params.protocol)
    log.info("%s/%s: %s", sm.wildcards.baseline, sm.wildcards.split, metrics)
