"""Rule annotation_frames: thumbnails of the videos on the annotation sheets (PyAV)."""
from tiktalk.io import read_json
from tiktalk.logs import script_logging
from tiktalk.report.kit.frames import extract_thumbnails

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    videos = {it["video_id"] for path in sm.input.annotation_keys for it in read_json(path)["items"]}
    problems = extract_thumbnails(videos, sm.params.video_dirs, sm.output.frames,
                                  n_frames=sm.params.n_frames)
    for video_id, why in sorted(problems.items()):
        log.warning("no thumbnails for video %s: %s", video_id, why)
    log.info("thumbnails for %d of %d videos", len(videos) - len(problems), len(videos))
