"""Rule claims: the paper's claims (and the config's) tested on our runs."""
from tiktalk.logs import script_logging
from tiktalk.metrics.bootstrap import read_replicates
from tiktalk.report.claims import write_claims_table

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    rows = write_claims_table(
        list(sm.input.claims), read_replicates(sm.input.replicates), dict(sm.params.runs),
        sm.params.labels, list(sm.params.seeds), sm.output.csv, sm.output.md, sm.output.comparisons,
        split=sm.params.split, data_source=sm.params.data_source, alpha=sm.params.alpha,
        level=sm.params.level,
        ratings=(sm.params.ratings_dir, sm.input.key[0]) if sm.params.ratings_dir else None,
        rated_labels=sm.params.rated_labels)
    for r in rows:
        log.info("%s: %s %s", r["claim"], r["verdict"], r["comparison"])
