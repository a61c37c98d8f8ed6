# Human-evaluation kits: Table 4 (rating sheets -> means + Fleiss' kappa) and Figure 2(b)/(c)
# (context-source labelling). The blank sheets, their HTML pages and the keys are always made
# (cheap); Table 4 and Figure 2 are scored and drawn once the config names the directories of
# the filled sheets (human_eval.ratings_dir, human_eval.context_sources_dir). Settings:
# tiktalk.report.kit.settings; files: tiktalk.report.kit.annotation.
from tiktalk.report.kit.annotation import annotator_names
from tiktalk.report.kit.settings import (
    clip_videos_dir,
    filled_sheet_files,
    human_eval_settings,
    kit_outputs,
    rated_baselines,
    thumbnail_videos_dir,
)

HE = human_eval_settings(config.get("human_eval"))
HE_DIR = f"{R}/human_eval"
HE_LABELS = {b: config["baselines"][b]["label"] for b in BASELINES}
# by default the paper's Table 4 rows and your own (family external)
HE_BASELINES = rated_baselines(HE, HE_LABELS, own=EXTERNAL)
HE_ANNOTATORS = annotator_names(HE.annotators)
CS_ANNOTATORS = annotator_names(HE.context_sources.annotators)
CS_SPLIT = HE.context_sources.split
HE_KITS = {"table4": HE_ANNOTATORS, "context_sources": CS_ANNOTATORS}
# thumbnails for the pages: human_eval.videos_dir, else a local_dir media source (the demo)
HE_VIDEOS = thumbnail_videos_dir(HE, config["media"]["source"])
HE_FRAMES = [f"{HE_DIR}/frames"] if HE_VIDEOS else []
# playable copies of each kit's videos beside its pages (human_eval.clip_height; the demo videos)
HE_CLIP_VIDEOS = clip_videos_dir(HE, config["media"]["source"])
HE_CLIPS = {kit: [f"{HE_DIR}/{kit}/sheets/clips"] if HE_CLIP_VIDEOS else [] for kit in HE_KITS}
# for `all` (rules/common.smk): sheets and pages always, Table 4 / Figure 2 when configured
HE_OUTPUTS = kit_outputs(HE, R, HE_KITS)


rule human_eval_sheets:
    """Blinded Table 4 rating sheets, one per annotator, and the key (kept apart)."""
    input:
        dialogues=f"{R}/data/{TABLE_SPLIT}.jsonl",
        predictions=expand(f"{R}/predictions/{{baseline}}/{TABLE_SPLIT}.jsonl",
                           baseline=HE_BASELINES),
        code=code("human_eval"),
    output:
        sheets=expand(f"{HE_DIR}/table4/sheets/{{a}}.{{ext}}", a=HE_ANNOTATORS, ext=("csv", "xlsx")),
        key=f"{HE_DIR}/table4/key.json",
    params:
        split=TABLE_SPLIT,
        baselines=HE_BASELINES,
        n=HE.n_dialogues,
        annotators=HE_ANNOTATORS,
        seed=HE.seed,
        scale=HE.scale.as_dict(),
    log:
        f"{R}/logs/human_eval_sheets.log",
    benchmark:
        f"{R}/benchmarks/human_eval_sheets.tsv"
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/human_eval_sheets.py"


rule context_sources_sheets:
    """Figure 2 labelling sheets: every response of the dialogues of sampled videos."""
    input:
        dialogues=f"{R}/data/{CS_SPLIT}.jsonl",
        code=code("human_eval"),
    output:
        sheets=expand(f"{HE_DIR}/context_sources/sheets/{{a}}.{{ext}}", a=CS_ANNOTATORS,
                      ext=("csv", "xlsx")),
        key=f"{HE_DIR}/context_sources/key.json",
    params:
        split=CS_SPLIT,
        n_videos=HE.context_sources.n_videos,
        annotators=CS_ANNOTATORS,
        seed=HE.seed,
    log:
        f"{R}/logs/context_sources_sheets.log",
    benchmark:
        f"{R}/benchmarks/context_sources_sheets.tsv"
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/context_sources_sheets.py"


rule annotation_frames:
    """Thumbnails of the videos on the sheets of both kits (PyAV), for the rating pages."""
    input:
        annotation_keys=[f"{HE_DIR}/{kit}/key.json" for kit in HE_KITS],
        videos=demo_videos,
        code=code("human_eval_frames"),
    output:
        frames=directory(f"{HE_DIR}/frames"),
    params:
        video_dirs=[HE_VIDEOS],
        n_frames=HE.frames,
    log:
        f"{R}/logs/annotation_frames.log",
    benchmark:
        f"{R}/benchmarks/annotation_frames.tsv"
    conda:
        "../envs/media.yaml"
    script:
        "../workflow/scripts/annotation_frames.py"


rule annotation_clips:
    """Small playable copies (H.264 + AAC) of the videos on one kit's sheets, in clips/ beside
    its pages, so the pages play each video from a folder of files with no server."""
    input:
        key=f"{HE_DIR}/{{kit}}/key.json",
        videos=demo_videos,
        code=code("human_eval_clips"),
    output:
        clips=directory(f"{HE_DIR}/{{kit}}/sheets/clips"),
    wildcard_constraints:
        kit="|".join(HE_KITS),
    params:
        video_dirs=[HE_CLIP_VIDEOS],
        height=HE.clip_height,
    log:
        f"{R}/logs/annotation_clips/{{kit}}.log",
    benchmark:
        f"{R}/benchmarks/annotation_clips/{{kit}}.tsv"
    conda:
        "../envs/media.yaml"
    script:
        "../workflow/scripts/annotation_clips.py"


rule human_eval_pages:
    """The static HTML rating page of every Table 4 sheet (video, frames strip when available)."""
    input:
        key=f"{HE_DIR}/table4/key.json",
        frames=HE_FRAMES,
        clips=HE_CLIPS["table4"],
        code=code("human_eval"),
    output:
        pages=expand(f"{HE_DIR}/table4/sheets/{{a}}.html", a=HE_ANNOTATORS),
    params:
        kit="table4",
        frames=HE.frames,
        video_href=HE.video_href,
    log:
        f"{R}/logs/human_eval_pages.log",
    benchmark:
        f"{R}/benchmarks/human_eval_pages.tsv"
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/annotation_pages.py"


rule context_sources_pages:
    """The static HTML labelling page of every Figure 2 sheet."""
    input:
        key=f"{HE_DIR}/context_sources/key.json",
        frames=HE_FRAMES,
        clips=HE_CLIPS["context_sources"],
        code=code("human_eval"),
    output:
        pages=expand(f"{HE_DIR}/context_sources/sheets/{{a}}.html", a=CS_ANNOTATORS),
    params:
        kit="context_sources",
        frames=HE.frames,
        video_href=HE.video_href,
    log:
        f"{R}/logs/context_sources_pages.log",
    benchmark:
        f"{R}/benchmarks/context_sources_pages.tsv"
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/annotation_pages.py"


rule table4:
    """Table 4 from the filled sheets: per-system means, Fleiss' kappa, the paper beside."""
    input:
        ratings=lambda w: filled_sheet_files(HE.ratings_dir, "ratings_dir"),
        key=f"{HE_DIR}/table4/key.json",
        code=code("human_eval"),
    output:
        scores=f"{HE_DIR}/table4_scores.json",
        csv=report(f"{R}/tables/table4.csv", category="Human evaluation", subcategory="Table 4",
                   caption="../workflow/report/table4.rst"),
        md=report(f"{R}/tables/table4.md", category="Human evaluation", subcategory="Table 4",
                  caption="../workflow/report/table4.rst"),
        tex=report(f"{R}/tables/table4.tex", category="Human evaluation", subcategory="Table 4",
                   caption="../workflow/report/table4.rst"),
        png=report(f"{R}/plots/table4.png", category="Human evaluation", subcategory="Table 4",
                   caption="../workflow/report/table4.rst"),
    params:
        ratings_dir=HE.ratings_dir,
        labels={b: HE_LABELS[b] for b in HE_BASELINES},
        data_source=config["release"]["source"],
    log:
        f"{R}/logs/table4.log",
    benchmark:
        f"{R}/benchmarks/table4.tsv"
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/table4.py"


rule figure2:
    """Figure 2(b)/(c) from the filled labelling sheets, the paper's TikTalk bars beside."""
    input:
        ratings=lambda w: filled_sheet_files(HE.context_sources_dir, "context_sources_dir"),
        key=f"{HE_DIR}/context_sources/key.json",
        code=code("human_eval"),
    output:
        scores=f"{HE_DIR}/context_sources_scores.json",
        b=report(f"{R}/tables/figure2b.csv", category="Human evaluation", subcategory="Figure 2",
                 caption="../workflow/report/figure2.rst"),
        c=report(f"{R}/tables/figure2c.csv", category="Human evaluation", subcategory="Figure 2",
                 caption="../workflow/report/figure2.rst"),
        md=report(f"{R}/tables/figure2.md", category="Human evaluation", subcategory="Figure 2",
                  caption="../workflow/report/figure2.rst"),
        png=report(f"{R}/plots/figure2.png", category="Human evaluation", subcategory="Figure 2",
                   caption="../workflow/report/figure2.rst"),
    params:
        ratings_dir=HE.context_sources_dir,
        data_source=config["release"]["source"],
    log:
        f"{R}/logs/figure2.log",
    benchmark:
        f"{R}/benchmarks/figure2.tsv"
    conda:
        "../envs/report.yaml"
    script:
        "../workflow/scripts/figure2.py"
