"""Rule image_features_shard: frozen image-encoder features (BLIP-2) for one shard."""
from tiktalk.logs import script_logging
from tiktalk.media.image_encoder import extract_shard_image_features
from tiktalk.media.shard import FETCH_COLUMNS, read_tsv

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    videos = [(r["video_id"], r["path"] if r["status"] == "ok" else None, r["reason"])
              for r in read_tsv(sm.input.fetch, FETCH_COLUMNS)]
    summary = extract_shard_image_features(videos, dict(sm.params.encoder),
                                           sm.output.features, sm.output.status)
    log.info("shard %s: %s", sm.wildcards.shard, summary)
