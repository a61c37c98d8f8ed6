"""Rule fetch_shard: resolve + download the videos of one shard (failures recorded)."""
from tiktalk.logs import script_logging
from tiktalk.media.shard import fetch_shard

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    rows = fetch_shard(sm.params.video_ids, sm.params.source, sm.params.download,
                       sm.params.videos_dir, sm.output.status,
                       id_pattern=sm.params.video_id_pattern)
    ok = sum(r["status"] == "ok" for r in rows)
    log.info("shard %s: %d of %d videos fetched", sm.wildcards.shard, ok, len(rows))
