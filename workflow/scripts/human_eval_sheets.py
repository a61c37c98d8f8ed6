"""Rule human_eval_sheets: blinded Table 4 rating sheets per annotator, and the key."""
from pathlib import Path

from tiktalk.logs import script_logging
from tiktalk.report.kit.human_eval import make_sheets
from tiktalk.report.kit.settings import Scale

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    p = sm.params
    scale = Scale(p.scale["low"], p.scale["high"], tuple(p.scale["criteria"]))
    key = make_sheets(sm.input.dialogues, dict(zip(p.baselines, sm.input.predictions)),
                      split=p.split, n=p.n, annotators=list(p.annotators), seed=p.seed, scale=scale,
                      sheets_dir=Path(sm.output.sheets[0]).parent, key_path=sm.output.key)
    log.info("%d dialogues x %d systems for %d annotators", len(key["items"]), len(p.baselines),
             len(key["annotators"]))
