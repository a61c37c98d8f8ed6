"""Rule training_curves: loss against step of every row, and all rows overlaid."""
from tiktalk.logs import script_logging
from tiktalk.report.curves import write_curves

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    models = iter(sm.input.models)
    runs = {b: {name: next(models) for name in by_seed} for b, by_seed in sm.params.runs.items()}
    write_curves(runs, sm.params.labels, dict(zip(sm.params.runs, sm.output.rows)), sm.output.overlay)
    log.info("training curves of %d rows", len(runs))
