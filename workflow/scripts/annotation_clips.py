"""Rule annotation_clips: playable copies of one kit's videos beside its pages (PyAV)."""
from tiktalk.io import read_json
from tiktalk.logs import script_logging
from tiktalk.report.kit.clips import write_clips

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    videos = {it["video_id"] for it in read_json(sm.input.key)["items"]}
    problems = write_clips(videos, sm.params.video_dirs, sm.output.clips, height=sm.params.height,
                           threads=sm.threads)
    for video_id, why in sorted(problems.items()):
        log.warning("no playable copy of video %s: %s", video_id, why)
    log.info("copies of %d of %d videos, %d px high", len(videos) - len(problems), len(videos),
             sm.params.height)
