"""Rule media_report: ok/failed counts by reason, videos per shard, frames histograms."""
from tiktalk.logs import script_logging
from tiktalk.report.media import write_media_report

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    summary = write_media_report(sm.input.status, sm.input.manifest, sm.output.table,
                                 sm.output.shards, sm.output.frames_png, sm.output.audio_png)
    log.info("media: %d of %d videos ok", summary["ok"], summary["videos"])
