"""Rule demo_item_types: per item type scores of every baseline (demo wiring check)."""
from tiktalk.logs import script_logging
from tiktalk.report.items import write_item_type_table

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    table = write_item_type_table(dict(zip(sm.params.baselines, sm.input.predictions)),
                                  sm.input.references, sm.input.item_types, sm.output.csv)
    log.info("per item type:\n%s", table.to_string(index=False))
