"""Rule table3: Table 3 as csv/md/tex with the paper's numbers, and its bar chart."""
from tiktalk.logs import script_logging
from tiktalk.report.table3 import Table3Files, remove_partial, write_table3
from tiktalk.report.tables import table3_caption

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    files = Table3Files(sm.output.csv, sm.output.md, sm.output.tex, sm.output.png)
    table = write_table3(dict(zip(sm.params.baselines, sm.input.metrics)), sm.params.labels, files,
                         caption=table3_caption(sm.params.split, sm.params.data_source))
    remove_partial(files)
    log.info("Table 3:\n%s", table.to_string(index=False))
