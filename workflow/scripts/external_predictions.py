"""Rule external_predictions: a row's own predictions file (family external), checked and copied."""
from tiktalk.data.predictions import copy_predictions
from tiktalk.logs import script_logging

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    n = copy_predictions(sm.input.predictions, sm.output[0])
    log.info("%s on %s: %d predictions from %s", sm.wildcards.baseline, sm.wildcards.split, n,
             sm.input.predictions)
