"""The ``weights:`` config block: which pretrained artifacts exist and which rules read them.

Config (config/tiktalk.yaml)::

    weights:
      dir: weights                  # artifacts live in weights/<name>/<file>
      strict: false                 # true: every file needs its sha256 (no trust on first use)
      artifacts:
        bert-base-chinese:
          hub: google-bert/bert-base-chinese      # a Hugging Face hub repo ...
          revision: <commit sha or tag>          # ... at a pinned revision
          files: {config.json: null, vocab.txt: null, model.safetensors: <sha256>}
        resnet101-imagenet:
          base_url: https://download.pytorch.org/models/   # ... or files under a URL
          files: {resnet101-63fe2227.pth: null}
        gpt2-chitchat:
          manual: "how to get the files"                   # ... or put there by hand
          files: {config.json: null, pytorch_model.bin: null, vocab.txt: null}

A config value anywhere that is a path under ``dir`` (``weights/bert-base-chinese``,
``weights/vggish/vggish-10086976.pth``) refers to that artifact: the rules whose config blocks
hold such a value declare the artifact's files and its verification record as inputs
(:meth:`WeightsSpec.inputs_for`), so replacing a weight re-runs exactly its consumers and a
missing one is fetched first (by the localrule ``fetch_weight``, on the login node).

A ``sha256: null`` file is hashed when it is first verified and the hash is recorded in
``weights/manifest.json`` (trust on first use); ``strict: true`` refuses nulls. torch.hub-style
file names (``resnet101-63fe2227.pth``) carry the first hex digits of their sha256, which are
always checked.

DAG time: standard library only.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Mapping

DEFAULT_DIR = "weights"
RECORD_DIR = ".verified"
SOURCES = ("hub", "base_url", "manual")

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
# torch.hub / torchvision: <name>-<first hex digits of the sha256>.<ext>
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z0-9]+$")


def hash_prefix(filename: str) -> str | None:
    """The sha256 prefix a torch.hub-style file name carries (``resnet101-63fe2227.pth``)."""
    m = _HASH_IN_NAME.search(posixpath.basename(filename))
    return m.group(1) if m else None


@dataclass(frozen=True)
class Artifact:
    """One pretrained artifact: its source and its files (file -> pinned sha256 or None)."""

    name: str
    files: Mapping[str, str | None]
    hub: str | None = None
    revision: str | None = None
    base_url: str | None = None
    manual: str | None = None
    description: str = ""

    @classmethod
    def from_config(cls, name: str, cfg: Mapping) -> "Artifact":
        return cls(name=name, files=dict(cfg.get("files") or {}), hub=cfg.get("hub"),
                   revision=cfg.get("revision"), base_url=cfg.get("base_url"),
                   manual=cfg.get("manual"), description=cfg.get("description", ""))

    @property
    def kind(self) -> str:
        given = [s for s in SOURCES if getattr(self, s)]
        return given[0] if len(given) == 1 else "invalid"

    def source(self) -> str:
        if self.kind == "hub":
            return f"hf://{self.hub}@{self.revision}"
        if self.kind == "base_url":
            return self.base_url
        return "manual"

    def url_of(self, file: str) -> str:
        return self.base_url.rstrip("/") + "/" + file

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"name": self.name, "source": self.source(), "files": dict(self.files)}
        for key in ("hub", "revision", "base_url", "manual", "description"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out


def _walk(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(key path, string) for every string inside ``value`` (mappings, sequences and settings
    dataclasses, e.g. a block already built with tiktalk.settings.from_mapping)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _walk(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _walk(v, f"{path}[{i}]")


@dataclass(frozen=True)
class WeightsSpec:
    """The artifacts of a config's ``weights:`` block (empty when the config has none)."""

    root: str = DEFAULT_DIR
    strict: bool = False
    artifacts: Mapping[str, Artifact] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: Mapping) -> "WeightsSpec":
        block = config.get("weights") or {}
        root = posixpath.normpath(str(block.get("dir") or DEFAULT_DIR))
        arts = {n: Artifact.from_config(n, a or {}) for n, a in (block.get("artifacts") or {}).items()}
        return cls(root=root, strict=bool(block.get("strict", False)), artifacts=arts)

    # -- paths ------------------------------------------------------------------------------
    def file_path(self, name: str, file: str) -> str:
        return f"{self.root}/{name}/{file}"

    def record_path(self, name: str) -> str:
        return f"{self.root}/{RECORD_DIR}/{name}.json"

    @property
    def manifest_path(self) -> str:
        return f"{self.root}/manifest.json"

    def source_of(self, name: str, file: str) -> dict:
        """What decides one file's bytes: its artifact's source (hub + revision, or URL), the
        file alone (so pinning its sha256 later, or listing another file, re-fetches nothing)."""
        art = self.artifacts[name].to_dict()
        src = {k: art[k] for k in ("hub", "revision", "base_url", "manual") if k in art}
        return {**src, "files": {file: None}}

    def files_of(self, name: str) -> list[str]:
        return [self.file_path(name, f) for f in sorted(self.artifacts[name].files)]

    def all_files(self) -> list[str]:
        return [p for n in sorted(self.artifacts) for p in self.files_of(n)]

    # -- references from config values ---------------------------------------------------------
    def reference(self, value: str) -> tuple[str, str | None] | None:
        """(artifact name, file or None) when ``value`` is a path under the weights dir."""
        if not isinstance(value, str) or not value:
            return None
        norm = posixpath.normpath(value)
        prefix = self.root + "/"
        if not norm.startswith(prefix):
            return None
        name, _, rest = norm[len(prefix):].partition("/")
        return name, (rest or None)

    def referenced(self, *blocks: Any) -> list[str]:
        """Names of the artifacts the strings inside ``blocks`` refer to (sorted)."""
        names = set()
        for block in blocks:
            for _, value in _walk(block, ""):
                ref = self.reference(value)
                if ref and ref[0] in self.artifacts:
                    names.add(ref[0])
        return sorted(names)

    def inputs_for(self, *blocks: Any) -> list[str]:
        """Input files of a rule whose params hold ``blocks``: each referenced artifact's
        files and its verification record (so a rule runs only on checked weights)."""
        out: list[str] = []
        for name in self.referenced(*blocks):
            out += self.files_of(name) + [self.record_path(name)]
        return out

    # -- consistency ----------------------------------------------------------------------
    def problems(self, config: Mapping) -> list[str]:
        """One line per inconsistency of the weights block or of a reference to it."""
        lines: list[str] = []
        for name, art in self.artifacts.items():
            where = f"weights.artifacts.{name}"
            given = [s for s in SOURCES if getattr(art, s)]
            if len(given) != 1:
                lines.append(f"{where}: give exactly one source of {list(SOURCES)}, got {given or 'none'}")
            if art.hub and not art.revision:
                lines.append(f"{where}.revision: required with hub (pin a commit sha or tag)")
            if art.revision and not art.hub:
                lines.append(f"{where}.revision: only meaningful with hub")
            if self.strict and art.hub and art.revision and not _HEX40.match(art.revision):
                lines.append(f"{where}.revision: {art.revision!r} is not a commit sha and weights.strict is true")
            for file, sha in art.files.items():
                if sha is None and self.strict:
                    lines.append(f"{where}.files.{file}: sha256 is null and weights.strict is true")
                prefix = hash_prefix(file)
                if sha and prefix and not sha.startswith(prefix):
                    lines.append(f"{where}.files.{file}: sha256 {sha[:12]}... contradicts the "
                                 f"prefix {prefix} in the file name")
        for path, value in _walk({k: v for k, v in config.items() if k != "weights"}, ""):
            ref = self.reference(value)
            if not ref:
                continue
            name, file = ref
            if name not in self.artifacts:
                known = ", ".join(sorted(self.artifacts)) or "none"
                lines.append(f"{path}: {value!r} is under {self.root}/ but weights.artifacts has "
                             f"no {name!r} (known: {known})")
            elif file is not None and file not in self.artifacts[name].files:
                lines.append(f"{path}: {value!r}: weights.artifacts.{name}.files has no {file!r}")
        return lines


# Config keys that name a pretrained model. Compute jobs run with the hub offline, so each must
# be a path under the weights dir (an artifact) or an existing local path. A baseline's keys
# are its family's ``weight_keys`` (tiktalk.families), added by the config check.
WEIGHT_KEYS = (
    "media.extract.backbone_weights", "media.extract.vggish_weights", "media.extract.vggish_pca",
    "media.image_encoder.name_or_path", "knowledge.retriever.model", "tokenizer.name",
    "paper_tables.topics.similarity.model", "paper_tables.interest.model",
)
NOT_A_WEIGHT = ("scratch", "random")


def _values_at(config: Mapping, pattern: str) -> Iterator[tuple[str, Any]]:
    def walk(node, parts, path):
        if not parts:
            yield path, node
            return
        if not isinstance(node, Mapping):
            return
        head, rest = parts[0], parts[1:]
        keys = list(node) if head == "*" else ([head] if head in node else [])
        for k in keys:
            yield from walk(node[k], rest, f"{path}.{k}" if path else str(k))

    yield from walk(config, pattern.split("."), "")


def offline_problems(config: Mapping, spec: WeightsSpec, exists=None,
                     keys: Iterable[str] = WEIGHT_KEYS) -> list[str]:
    """One line per pretrained-model key (``keys``, dotted paths; ``*`` matches any key) whose
    value is neither an artifact path nor an existing local path (a hub name would be looked
    up inside an offline compute job)."""
    import os

    exists = exists or os.path.exists
    lines = []
    for pattern in keys:
        for path, value in _values_at(config, pattern):
            if not isinstance(value, str) or value in NOT_A_WEIGHT or spec.reference(value):
                continue
            if not exists(value):
                lines.append(f"{path}: {value!r} is not a local path; compute jobs run offline "
                             f"(HF_HUB_OFFLINE=1): list it under weights.artifacts and give its "
                             f"path here ({spec.root}/<name>)")
    return lines


OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def set_offline_environment(environ=None) -> None:
    """Switch the Hugging Face hub off for every job the workflow starts (the Snakefile calls
    this; jobs inherit it, on SLURM through sbatch's exported environment). Weights come from
    weights/ only; the localrule ``fetch_weight`` is the one job that switches it back on."""
    import os

    env = os.environ if environ is None else environ
    env.update(OFFLINE_ENV)
