"""Settings of the paper's other outputs (config ``paper_tables:``, every key optional):
ranking (Recall@K, Mean Rank), Table 5 (topics), Table 6 (where the interest lies) and the
Figure 4 cases page. Built once with :func:`tiktalk.settings.from_mapping` (an unknown key fails
naming the closest one); cheap to import (the Snakefile reads it at DAG time)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from tiktalk.settings import from_mapping

# The paper's ten Douyin topic categories (appendix A.1, Table 5), in its order: the Chinese
# category name that descriptions are compared with, and the English label of the table.
PAPER_TOPICS = (
    ("科普", "Science"), ("短剧", "Short play"), ("游戏", "Gaming"), ("生活", "Lifestyle"),
    ("记录", "Recording"), ("美食", "Food"), ("创意", "Creativity"), ("亲子", "Parenting"),
    ("校园", "Campus"), ("其他", "Others"),
)


@dataclass(frozen=True)
class RankingSettings:
    splits: tuple[str, ...] = ("test",)
    n_candidates: int = 100            # Livebot / TikTalk: 5 references + 95 others
    seed: int = 13
    score: str = "mean"                # mean log-likelihood per token | sum
    batch_size: int = 64

    def __post_init__(self):
        if self.score not in ("mean", "sum"):
            raise ValueError(f"paper_tables.ranking.score must be mean or sum, got {self.score!r}")
        if self.n_candidates < 6:
            raise ValueError("paper_tables.ranking.n_candidates must exceed the 5 references")
        object.__setattr__(self, "splits", tuple(self.splits))


@dataclass(frozen=True)
class TopicSettings:
    """Table 5: each video goes to the topic name most similar to its description."""

    # Chinese name -> English label, in table order; the ``others`` name gets the videos whose
    # best similarity to the other names is below ``min_similarity`` (and those without a
    # description); it is never matched by similarity itself
    names: tuple[tuple[str, str], ...] = PAPER_TOPICS
    others: str = "其他"
    min_similarity: float = 0.0
    # similarity model: {kind: char_tfidf} (embedded) | {kind: sbert, model: <dir>, batch_size,
    # device, max_seq_length} (Sentence-BERT, as the paper)
    similarity: dict = field(default_factory=lambda: {"kind": "char_tfidf"})

    def __post_init__(self):
        names = tuple((str(zh), str(en)) for zh, en in
                      (self.names.items() if isinstance(self.names, Mapping) else self.names))
        object.__setattr__(self, "names", names)
        if self.others not in dict(names):
            raise ValueError(f"paper_tables.topics.others {self.others!r} is not one of the names")
        if len(names) < 2:
            raise ValueError("paper_tables.topics.names needs the others name and at least one topic")


@dataclass(frozen=True)
class InterestSettings:
    """Table 6: for visually relevant responses, the 20% time bucket of the most similar frame."""

    split: str = "test"
    buckets: int = 5
    max_frames: int = 50               # frames per video, sampled as the media stage does
    # where the visually relevant responses come from: "annotations" (the Figure 2 labelling
    # sheets: human_eval.context_sources_dir, a majority of the annotators ticking vision) or
    # "item_types" (the demo: every reference of its visual items)
    relevant: str = "annotations"
    # the Chinese-CLIP model: a ChineseCLIPModel directory (weights/chinese-clip); null with
    # ``demo_clip``: a tiny ChineseCLIPModel fitted on the demo's training frames first
    model: str | None = None
    demo_clip: dict | None = None      # tiny model and fitting settings (tiktalk.media.clip)
    batch_size: int = 64
    device: str = "auto"

    def __post_init__(self):
        if self.relevant not in ("annotations", "item_types"):
            raise ValueError("paper_tables.interest.relevant must be annotations or item_types")
        if (self.model is None) == (self.demo_clip is None):
            raise ValueError("paper_tables.interest: give exactly one of model (a Chinese-CLIP "
                             "directory) and demo_clip (a tiny model fitted on the demo)")
        if self.buckets < 1:
            raise ValueError("paper_tables.interest.buckets must be >= 1")


@dataclass(frozen=True)
class CasesSettings:
    """Figure 4: a page of test cases (frames, context, references, every baseline's response)."""

    split: str = "test"
    n: int = 4
    seed: int = 13
    dialogue_ids: tuple[str, ...] | None = None    # named cases instead of seeded ones
    frames: int = 6

    def __post_init__(self):
        if self.dialogue_ids is not None:
            object.__setattr__(self, "dialogue_ids", tuple(self.dialogue_ids))


@dataclass(frozen=True)
class PaperTablesSettings:
    ranking: RankingSettings = field(default_factory=RankingSettings)
    topics: TopicSettings = field(default_factory=TopicSettings)
    interest: InterestSettings | None = None        # Table 6 needs a Chinese-CLIP: opt in
    cases: CasesSettings = field(default_factory=CasesSettings)


def paper_tables_settings(block: Mapping | None) -> PaperTablesSettings:
    return from_mapping(PaperTablesSettings, block, "paper_tables")


# ---- DAG helpers (the rules in rules/paper_tables.smk) ---------------------------------------


def paper_tables_outputs(pt: PaperTablesSettings, results: str, *, table7: bool, table6: bool) -> list[str]:
    """The files `all` asks of the paper-table rules."""
    def table(name: str, plot: bool = True) -> list[str]:
        out = [f"{results}/tables/{name}.{x}" for x in ("csv", "md", "tex")]
        return out + ([f"{results}/plots/{name}.png"] if plot else [])

    outs = table("table2", plot=False) + table("table5")
    if table7:
        outs += table("table7")
    for split in pt.ranking.splits:
        outs += table(f"ranking_{split}")
    if table6:
        outs += table("table6")
    return outs + [f"{results}/report/figure4.html"]


def relevant_input_files(interest: InterestSettings, split: str, results: str, he_dir: str) -> dict:
    """Where the visually relevant responses of ``split`` are read from: the demo's dialogue
    table and item types, or the Figure 2 labelling key (its filled sheets come separately)."""
    if interest.relevant == "item_types":
        return {"dialogues": f"{results}/data/{split}.jsonl", "item_types": f"{results}/demo/item_types.json"}
    return {"key": f"{he_dir}/context_sources/key.json"}
