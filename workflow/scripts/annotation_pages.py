"""Rules human_eval_pages / context_sources_pages: one offline HTML page per sheet."""
from pathlib import Path

from tiktalk.io import read_json
from tiktalk.logs import script_logging
from tiktalk.report.kit import context_sources, human_eval
from tiktalk.report.kit.clips import clip_links, template_links
from tiktalk.report.kit.frames import load_strips

sm = snakemake  # noqa: F821
with script_logging(sm.log[0], sm.threads) as log:
    key = read_json(sm.input.key)
    videos = {it["video_id"] for it in key["items"]}
    frames_dir = sm.input.frames[0] if sm.input.frames else None
    strips = load_strips(frames_dir, videos, max_frames=sm.params.frames)
    links = template_links(sm.params.video_href, videos)
    if sm.input.clips:
        links = clip_links(sm.input.clips[0], videos)
    kit = human_eval if sm.params.kit == "table4" else context_sources
    pages = kit.write_pages(key, Path(sm.output.pages[0]).parent, strips, links)
    log.info("%d pages, frames for %d videos, playable video for %d of %d", len(pages),
             len(strips), len(links), len(videos))
