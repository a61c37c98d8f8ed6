"""Rule table4: score the filled Table 4 sheets; Table 4 (csv/md/tex) and its chart."""
from tiktalk.logs import script_logging
from tiktalk.report.kit.human_eval import score
from tiktalk.report.kit.table4 import build_table4, plot_table4

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    scores = score(sm.params.ratings_dir, sm.input.key, sm.output.scores)
    labels = dict(sm.params.labels)
    build_table4(scores, labels, sm.output.csv, sm.output.md, sm.output.tex,
                 data_source=sm.params.data_source)
    plot_table4(scores, labels, sm.output.png, sm.params.data_source)
    log.info("Table 4:\n%s", open(sm.output.md, encoding="utf-8").read())
