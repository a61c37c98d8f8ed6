"""Rule table6: the time segment of the frame most similar to each visually relevant response."""
from tiktalk.io import read_json
from tiktalk.logs import script_logging
from tiktalk.media.clip import ClipScorer
from tiktalk.report.interest import (build_table6, match_frames, relevant_from_annotations,
                                     relevant_from_item_types, video_files)

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    if sm.params.relevant == "item_types":
        responses = relevant_from_item_types(sm.input.dialogues, sm.input.item_types, sm.params.split)
    else:
        responses = relevant_from_annotations(sm.input.key, sm.params.ratings_dir)
    scorer = ClipScorer(sm.input.clip, device=sm.params.device, batch_size=sm.params.batch_size)
    matches, skipped = match_frames(responses, video_files(sm.input.fetch), scorer,
                                    sm.params.max_frames, sm.params.buckets)
    for vid, why in sorted(skipped.items()):
        log.warning("video %s left out: %s", vid, why)
    attributes = read_json(sm.input.attributes[0]) if sm.input.attributes else None
    build_table6(matches, skipped, sm.output.csv, sm.output.md, sm.output.tex, sm.output.png,
                 sm.output.matches, buckets=sm.params.buckets, split=sm.params.split,
                 data_source=sm.params.data_source, model=sm.params.model,
                 relevant=sm.params.relevant, attributes=attributes)
    log.info("Table 6:\n%s", open(sm.output.md, encoding="utf-8").read())
