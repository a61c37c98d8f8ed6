"""Rule table3: Table 3 as csv/md/tex with the paper's numbers, and its bar chart; each number
with its bootstrap interval (the mean and spread over seeds with several)."""
from tiktalk.logs import script_logging
from tiktalk.metrics.bootstrap import read_replicates
from tiktalk.report.table3 import Table3Files, remove_partial, write_table3
from tiktalk.report.tables import table3_caption

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    files = Table3Files(sm.output.csv, sm.output.md, sm.output.tex, sm.output.png)
    runs = dict(sm.params.runs)
    run_names = [r for b in sm.params.baselines for r in runs[b]]
    seeds = len(next(iter(runs.values())))
    caption = table3_caption(sm.params.split, sm.params.data_source,
                             read_replicates(sm.input.replicates).resamples, sm.params.level, seeds)
    table = write_table3(dict(zip(run_names, sm.input.metrics)), sm.params.labels, files,
                         caption=caption, runs=runs, replicates=sm.input.replicates,
                         level=sm.params.level)
    remove_partial(files)
    log.info("Table 3:\n%s", table.to_string(index=False))
