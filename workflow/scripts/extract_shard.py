"""Rule extract_shard: frames -> ResNet, audio -> VGGish for one shard."""
from tiktalk.logs import script_logging
from tiktalk.media.shard import extract_shard

sm = snakemake  # noqa: F821
with script_logging(sm.log[0]) as log:
    summary = extract_shard(sm.input.fetch, sm.params.extract, sm.output.features,
                            sm.output.status)
    log.info("shard %s: %s", sm.wildcards.shard,
             {k: v for k, v in summary.items() if k != "notes"})
