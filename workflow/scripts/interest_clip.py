"""Rule interest_clip (demo): fit a tiny Chinese-CLIP on the training videos' frames, the frames
of each video's focus segment being the positives of its visual responses."""
from tiktalk.io import read_json
from tiktalk.logs import script_logging
from tiktalk.report.interest import demo_clip_training_set, relevant_from_item_types, video_files
from tiktalk.media.clip import TinyClipSettings, fit_tiny_clip
from tiktalk.settings import from_mapping

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    settings = from_mapping(TinyClipSettings, sm.params.settings, "paper_tables.interest.demo_clip")
    responses = relevant_from_item_types(sm.input.dialogues, sm.input.item_types, "train")
    frames, texts, positives = demo_clip_training_set(
        responses, video_files(sm.input.fetch), read_json(sm.input.attributes), settings.image_size,
        sm.params.max_frames, sm.params.buckets)
    log.info("fitting on %d (video, response) pairs", len(texts))
    log.info("%s", fit_tiny_clip(frames, texts, sm.output.model, settings, positives))
