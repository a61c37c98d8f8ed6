"""Rule adopt_shard: take one precomputed feature shard (media.precomputed) after checking it
holds exactly this shard's videos; status table last."""
from tiktalk.logs import script_logging
from tiktalk.media.precomputed import adopt_shard

sm = snakemake  # noqa: F821
with script_logging(sm.log[0]) as log:
    kinds = [k for k in ("features", "status", "image") if k in sm.output.keys()]
    adopt_shard({k: sm.input[k] for k in kinds}, {k: sm.output[k] for k in kinds}, sm.params.video_ids)
    log.info("shard %s: %d videos adopted from %s", sm.wildcards.shard, len(sm.params.video_ids),
             sm.params.source)
