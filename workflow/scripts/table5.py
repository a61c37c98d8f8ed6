"""Rule table5: videos per topic (description vs category names), beside the paper's Table 5."""
from tiktalk.logs import script_logging
from tiktalk.report.topics import build_table5

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    build_table5(sm.input.manifest, list(sm.input.release), [tuple(n) for n in sm.params.names],
                 sm.params.others, sm.params.similarity, sm.params.min_similarity, sm.output.csv,
                 sm.output.md, sm.output.tex, sm.output.png, sm.output.assignments,
                 data_source=sm.params.data_source, fields=sm.params.fields,
                 out_provenance=sm.output.provenance)
    log.info("Table 5:\n%s", open(sm.output.md, encoding="utf-8").read())
