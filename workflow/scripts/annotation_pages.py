"""Rules human_eval_pages / context_sources_pages: one offline HTML page per sheet."""
from pathlib import Path

from tiktalk.io import read_json
from tiktalk.logs import script_logging
from tiktalk.report import context_sources, human_eval
from tiktalk.report.frames import load_strips

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    key = read_json(sm.input.key)
    frames_dir = sm.input.frames[0] if sm.input.frames else None
    strips = load_strips(frames_dir, {it["video_id"] for it in key["items"]},
                         max_frames=sm.params.frames)
    kit = human_eval if sm.params.kit == "table4" else context_sources
    pages = kit.write_pages(key, Path(sm.output.pages[0]).parent, strips, sm.params.video_href)
    log.info("%d pages, frames for %d videos", len(pages), len(strips))
