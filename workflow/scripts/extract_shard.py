"""Rule extract_shard: decode each video of one shard once; ResNet frames, VGGish audio and
(when asked for) BLIP-2 image tokens; status table last."""
from tiktalk.logs import script_logging
from tiktalk.media.shard import extract_shard

sm = snakemake  # noqa: F821
with script_logging(sm.log[0]) as log:
    image = sm.params.image_encoder
    summary = extract_shard(sm.input.fetch, sm.params.extract, sm.output.features, sm.output.status,
                            image_encoder=dict(image) if image else None,
                            out_image_npz=sm.output.get("image"), seed=sm.params.seed,
                            views=sm.params.image_views)
    log.info("shard %s: %s", sm.wildcards.shard,
             {k: v for k, v in summary.items() if k != "notes"})
