"""Rule convert_c3kg: C3KG's gpickle -> plain table, only with knowledge.allow_pickle."""
from tiktalk.knowledge.c3kg import convert_gpickle
from tiktalk.logs import script_logging

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    log.info("%s", convert_gpickle(sm.input.gpickle, sm.output.table,
                                   allow_pickle=sm.params.allow_pickle))
