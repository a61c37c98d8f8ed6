"""What a baseline reads: :class:`BaselineInputs`, the paths the workflow hands every family."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class BaselineInputs:
    """Paths a baseline reads; built by the workflow scripts from Snakemake's inputs."""

    dialogues: dict[str, Path]                      # split -> results/data/{split}.jsonl
    features: list[Path] = field(default_factory=list)   # results/media/*.features.npz
    knowledge: dict[str, Path] = field(default_factory=dict)  # split -> knowledge jsonl
    tokenizer: Path | str | None = None             # trained tokenizer dir or a hub name
    extra_features: list[Path] = field(default_factory=list)  # e.g. BLIP-2 image-encoder shards
    seed: int = 0

    def to_json(self) -> dict:
        """A JSON-able dict (paths as strings), e.g. for the torchrun workers' spec file."""
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))

    @classmethod
    def from_json(cls, d: dict) -> "BaselineInputs":
        return cls(
            dialogues={k: Path(v) for k, v in d["dialogues"].items()},
            features=[Path(p) for p in d.get("features", [])],
            knowledge={k: Path(v) for k, v in d.get("knowledge", {}).items()},
            tokenizer=d.get("tokenizer"),
            extra_features=[Path(p) for p in d.get("extra_features", [])],
            seed=int(d.get("seed", 0)),
        )
