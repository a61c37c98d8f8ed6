"""Rule table2: data division (videos, dialogues, turns, Avg-v/t/l) beside the paper's Table 2."""
from tiktalk.logs import script_logging
from tiktalk.report.data_division import build_table2

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    build_table2(dict(zip(sm.params.splits, sm.input.dialogues)), sm.input.status, sm.output.csv,
                 sm.output.md, sm.output.tex, data_source=sm.params.data_source)
    log.info("Table 2:\n%s", open(sm.output.md, encoding="utf-8").read())
