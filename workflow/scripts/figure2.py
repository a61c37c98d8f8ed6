"""Rule figure2: score the filled context-source sheets; Figure 2(b)/(c) tables and plot."""
from tiktalk.logs import script_logging
from tiktalk.report.kit.context_sources import score
from tiktalk.report.kit.figure2 import build_figure2

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    scores = score(sm.params.ratings_dir, sm.input.key, sm.output.scores)
    build_figure2(scores, sm.output.b, sm.output.c, sm.output.md, sm.output.png,
                  data_source=sm.params.data_source)
    log.info("Figure 2:\n%s", open(sm.output.md, encoding="utf-8").read())
