"""Rule bootstrap: every Table 3 run's corpus scores on the same resamples of the dialogues."""
from tiktalk.logs import script_logging
from tiktalk.metrics.bootstrap import write_replicates

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    rep = write_replicates(dict(zip(sm.params.runs, sm.input.stats)), sm.output[0],
                           resamples=sm.params.resamples, seed=sm.params.seed)
    log.info("%d runs x %d resamples of %d dialogues (seed %d)", len(rep.runs), rep.resamples,
             rep.n, rep.seed)
