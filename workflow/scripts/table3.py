"""Rule table3: Table 3 as csv/md/tex with the paper's numbers, and its bar chart."""
from tiktalk.logs import script_logging
from tiktalk.report.plots import plot_table3
from tiktalk.report.tables import build_table3, load_metrics

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    metrics = load_metrics(dict(zip(sm.params.baselines, sm.input.metrics)))
    labels = sm.params.labels
    table = build_table3(metrics, labels, sm.output.csv, sm.output.md, sm.output.tex,
                         all_paper_rows=True)
    plot_table3(metrics, labels, sm.output.png)
    log.info("Table 3:\n%s", table.to_string(index=False))
