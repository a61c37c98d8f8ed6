"""Settings of the annotation kits (config block ``human_eval``), strict via ``from_mapping``.

Cheap to import (the Snakefile reads them at DAG-build time)::

    human_eval:
      n_dialogues: 100          # test dialogues to rate (paper sec. 4.1.2: 100)
      annotators: 3             # paper: 3
      seed: 13                  # sampling and candidate order
      scale: {low: 1, high: 5, criteria: [Sensible, Specific, MM Relevant, Quality]}
      baselines: null           # systems to rate; null: every run labelled as a Table 4 row
      ratings_dir: null         # filled Table 4 sheets; set it to score them
      videos_dir: null          # <video_id>.mp4 for the frames strip (null: the media
                                # source's local_dir, else no frames)
      frames: 6                 # thumbnails per video on the rating pages (0: none)
      clip_height: 360          # playable copies of the videos beside the pages, this many
                                # pixels high (0: none)
      video_href: null          # relative link template "{video_id}" for the pages' player
                                # instead of the copies (your own files beside the pages)
      context_sources: {split: test, n_videos: 300, annotators: 3}
      context_sources_dir: null # filled Figure 2 sheets; set it to score them
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from tiktalk.report.paper import (
    FIGURE2B_VIDEOS,
    TABLE4_ANNOTATORS,
    TABLE4_CRITERIA,
    TABLE4_DIALOGUES,
    TABLE4_ROWS,
    TABLE4_SCALE,
)
from tiktalk.settings import SettingsError, from_mapping


@dataclass(frozen=True)
class Scale:
    """A rating scale: integer points ``low..high`` for each criterion."""

    low: int = TABLE4_SCALE[0]
    high: int = TABLE4_SCALE[1]
    criteria: tuple[str, ...] = TABLE4_CRITERIA

    def __post_init__(self):
        for name in ("low", "high"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise SettingsError(f"scale.{name} must be an integer, got {v!r}")
        if self.high <= self.low:
            raise SettingsError(f"scale: high ({self.high}) must be above low ({self.low})")
        if not self.criteria or len(set(self.criteria)) != len(self.criteria):
            raise SettingsError(f"scale.criteria must be distinct names, got {list(self.criteria)}")
        if any(not isinstance(c, str) or not c.strip() for c in self.criteria):
            raise SettingsError(f"scale.criteria must be non-empty strings, got {list(self.criteria)}")

    @property
    def points(self) -> tuple[int, ...]:
        return tuple(range(self.low, self.high + 1))

    def as_dict(self) -> dict:
        return {"low": self.low, "high": self.high, "criteria": list(self.criteria)}


@dataclass(frozen=True)
class ContextSourcesSettings:
    split: str = "test"
    n_videos: int = FIGURE2B_VIDEOS
    annotators: int = 3


@dataclass(frozen=True)
class HumanEvalSettings:
    n_dialogues: int = TABLE4_DIALOGUES
    annotators: int = TABLE4_ANNOTATORS
    seed: int = 13
    scale: Scale = field(default_factory=Scale)
    baselines: tuple[str, ...] | None = None
    ratings_dir: str | None = None
    videos_dir: str | None = None
    frames: int = 6
    clip_height: int = 360
    video_href: str | None = None
    context_sources: ContextSourcesSettings = field(default_factory=ContextSourcesSettings)
    context_sources_dir: str | None = None

    def __post_init__(self):
        for name in ("n_dialogues", "annotators", "frames", "clip_height"):
            v = getattr(self, name)
            low = 0 if name in ("frames", "clip_height") else 1
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                kind = "a positive integer" if low else "an integer >= 0"
                raise SettingsError(f"human_eval.{name} must be {kind}, got {v!r}")


def human_eval_settings(block: Mapping | None) -> HumanEvalSettings:
    """The ``human_eval`` config block (absent: the paper's defaults)."""
    data = dict(block or {})
    if isinstance(data.get("baselines"), list):
        data["baselines"] = tuple(data["baselines"])
    return from_mapping(HumanEvalSettings, data, "human_eval")


def rated_baselines(settings: HumanEvalSettings, labels: Mapping[str, str], own=()) -> list[str]:
    """The runs to rate: ``settings.baselines`` (each must be a run), else every run whose
    label is a row of the paper's Table 4 and every run of ``own`` (your own systems' rows),
    in the config's order."""
    if settings.baselines is None:
        chosen = [name for name, label in labels.items() if label in TABLE4_ROWS or name in own]
        if not chosen:
            raise SettingsError("human_eval: no baseline is labelled as a row of the paper's "
                                f"Table 4 ({', '.join(TABLE4_ROWS)}); name them in human_eval.baselines")
        return chosen
    unknown = [b for b in settings.baselines if b not in labels]
    if unknown:
        raise SettingsError(f"human_eval.baselines: {unknown} are not baselines of the config "
                            f"({', '.join(labels)})")
    if not settings.baselines:
        raise SettingsError("human_eval.baselines is empty: name at least one, or leave it out")
    return list(settings.baselines)


def kit_videos_dir(settings: HumanEvalSettings, media_source: Mapping) -> str | None:
    """Where the kits' videos are: ``videos_dir``, else a ``local_dir`` media source's root
    (the demo's videos); None when neither (the pages then name the video to watch)."""
    if settings.videos_dir:
        return settings.videos_dir
    return media_source.get("root") if media_source.get("kind") == "local_dir" else None


def thumbnail_videos_dir(settings: HumanEvalSettings, media_source: Mapping) -> str | None:
    """Where the rating pages' thumbnails come from (:func:`kit_videos_dir`); None when
    ``frames`` is 0."""
    return None if settings.frames == 0 else kit_videos_dir(settings, media_source)


def clip_videos_dir(settings: HumanEvalSettings, media_source: Mapping) -> str | None:
    """Where the videos to copy beside the pages come from (:func:`kit_videos_dir`); None when
    ``clip_height`` is 0 or ``video_href`` links the pages to files of the user's own."""
    if settings.clip_height == 0 or settings.video_href:
        return None
    return kit_videos_dir(settings, media_source)


def filled_sheet_files(directory: str, what: str) -> list[str]:
    """The sheets (``*.csv``, ``*.xlsx``, any case) of a configured ratings directory; none is
    an error naming the key and the files that were skipped."""
    from tiktalk.report.kit.sheet_io import describe_skipped, sheet_files

    files, skipped = sheet_files(directory)
    if not files:
        more = f"; skipped: {describe_skipped(skipped)}" if skipped else ""
        raise SettingsError(f"human_eval.{what}: no filled sheets (*.csv, *.xlsx) in {directory}{more}")
    return [str(p) for p in files]


def kit_outputs(settings: HumanEvalSettings, results: str, annotators: Mapping[str, list[str]]) -> list[str]:
    """The kits' files for the ``all`` target: sheets and pages of every kit (``annotators``:
    kit -> names) always; Table 4 / Figure 2 once their ratings directory is configured."""
    outs = [f"{results}/human_eval/{kit}/sheets/{a}.{ext}" for kit, names in annotators.items()
            for a in names for ext in ("csv", "xlsx", "html")]
    if settings.ratings_dir:
        outs += [f"{results}/tables/table4.{ext}" for ext in ("csv", "md", "tex")]
        outs.append(f"{results}/plots/table4.png")
    if settings.context_sources_dir:
        outs += [f"{results}/tables/figure2b.csv", f"{results}/tables/figure2c.csv",
                 f"{results}/tables/figure2.md", f"{results}/plots/figure2.png"]
    return outs
