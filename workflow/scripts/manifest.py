"""Checkpoint manifest: all videos, id-sorted, grouped into shards."""
from tiktalk.data.build import build_manifest
from tiktalk.logs import script_logging

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    log.info("%s", build_manifest(list(sm.input.dialogues), sm.params.shard_size, sm.output.tsv,
                                   video_id_pattern=sm.params.video_id_pattern))
