"""Rule ranking_table: Recall@1/5/10 and Mean Rank of every baseline, as csv/md/tex and a chart."""
from tiktalk.logs import script_logging
from tiktalk.report.ranking_table import build_ranking_table

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    scored = dict(zip(sm.params.ranked, sm.input.ranking))
    paths = {b: scored.get(b) for b in sm.params.baselines}
    unscored = {b: f"cannot score: family {f} has no scorer" for b, f in sm.params.unscored.items()}
    build_ranking_table(paths, sm.params.labels, sm.output.csv, sm.output.md, sm.output.tex,
                        sm.output.png, split=sm.wildcards.split, data_source=sm.params.data_source,
                        unscored=unscored)
    log.info("ranking table:\n%s", open(sm.output.md, encoding="utf-8").read())
