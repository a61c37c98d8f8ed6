"""Rule context_sources_sheets: Figure 2 labelling sheets per annotator, and the key."""
from pathlib import Path

from tiktalk.logs import script_logging
from tiktalk.report.kit.context_sources import make_sheets

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    p = sm.params
    key = make_sheets(sm.input.dialogues, split=p.split, n_videos=p.n_videos,
                      annotators=list(p.annotators), seed=p.seed,
                      sheets_dir=Path(sm.output.sheets[0]).parent, key_path=sm.output.key)
    log.info("%d responses of %d dialogues for %d annotators",
             sum(len(it["candidates"]) for it in key["items"]), len(key["items"]),
             len(key["annotators"]))
