"""Rule build_split: release JSON of one split -> dialogue table (+ references)."""
from tiktalk.data.build import build_split
from tiktalk.logs import script_logging

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    summary = build_split(sm.input.release, sm.wildcards.split, sm.output.dialogues,
                          sm.output.get("references"),
                          video_id_pattern=sm.params.video_id_pattern,
                          fields=sm.params.fields, val_from_train=sm.params.val_from_train,
                          out_report=sm.output.report)
    log.info("%s", summary)
