"""Rule table7: minutes per epoch of the Maria modality rows, from the trainings' own logs."""
from pathlib import Path

from tiktalk.logs import script_logging
from tiktalk.report.efficiency import build_table7

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    rows = dict(sm.params.rows)
    logs = {b: Path(m).parent / "train_log.jsonl" for b, m in zip(rows.values(), sm.input.models)}
    build_table7(logs, rows, sm.params.labels, sm.output.csv, sm.output.md, sm.output.tex,
                 sm.output.png, data_source=sm.params.data_source)
    log.info("Table 7:\n%s", open(sm.output.md, encoding="utf-8").read())
