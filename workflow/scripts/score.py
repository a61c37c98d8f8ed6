"""Rule score: the paper's metric protocol on one baseline's predictions of one split, and
each dialogue's statistics for the bootstrap."""
from tiktalk.logs import script_logging
from tiktalk.metrics.evaluate import evaluate_files

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads, job=sm) as log:
    metrics = evaluate_files(sm.input.predictions, sm.input.references, sm.output.metrics,
                             protocol=sm.params.protocol, stats_path=sm.output.stats)
    log.info("%s/%s: %s (the statistics reproduce every score)", sm.wildcards.baseline,
             sm.wildcards.split, metrics)
