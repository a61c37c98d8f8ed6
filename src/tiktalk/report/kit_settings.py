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
      video_href: null          # relative link template "{video_id}" for a <video> player
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
    video_href: str | None = None
    context_sources: ContextSourcesSettings = field(default_factory=ContextSourcesSettings)
    context_sources_dir: str | None = None

    def __post_init__(self):
        for name in ("n_dialogues", "annotators", "frames"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < (0 if name == "frames" else 1):
                raise SettingsError(f"human_eval.{name} must be a positive integer, got {v!r}")


def human_eval_settings(block: Mapping | None) -> HumanEvalSettings:
    """The ``human_eval`` config block (absent: the paper's defaults)."""
    data = dict(block or {})
    if isinstance(data.get("baselines"), list):
        data["baselines"] = tuple(data["baselines"])
    return from_mapping(HumanEvalSettings, data, "human_eval")
