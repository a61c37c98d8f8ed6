"""What the workflow knows about a baseline family: one declarative descriptor per family.

Each module of this package (but this one and :mod:`tiktalk.families.registry`) describes one
family, the ``family:`` value of a baseline's config block, as a module-level ``FAMILY``::

    FAMILY = Family(
        name="maria",
        code="tiktalk.baselines.maria",        # train / predict (/ score_candidates); None: this module
        settings="tiktalk.baselines.maria:MariaParams",   # the `params:` dataclass
        schema="#/$defs/maria_params",         # its JSON schema (None: generated from `settings`)
        reads={"features": ("model.use_visual", "model.use_audio"),
               "knowledge": ("model.use_knowledge",)},
        weight_keys=("init", "tokenizer"),
        relations=(WiringRelation("frames", "visual", "model.use_visual"), ...),
    )

A descriptor module imports nothing heavy (no torch): the Snakefile, the config check and the
rehearsal's offline check read every family at DAG-build time. The workflow reads from it:

* what a row's jobs read (``reads``; the LLM of ``llm_from``; the pipeline's tokenizer or its
  own, ``pipeline_tokenizer``), so its train/predict/rank jobs get exactly those inputs;
* its params' schema (the config check) and the config keys naming pretrained weights
  (``weight_keys``, checked to be local files since jobs run offline);
* its conda env (``env``), whether it trains and whether it scores ranking candidates;
* its rows' relations in the demo's wiring table (``relations``).

Only the family's own stages import its descriptor module (its train/predict/rank jobs declare it
as code, :func:`tiktalk.workflow.code_files`), so editing a descriptor re-runs that family only.

Layer: between ``training`` and ``baselines``; this module imports nothing from the package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

PRODUCTS = ("features", "image_features", "knowledge")


@dataclass(frozen=True)
class WiringRelation:
    """In the demo's wiring table (:mod:`tiktalk.report.wiring`), a row of this family beats
    its counterpart on the items of ``item_type``; ``relation`` names what it has that the
    counterpart lacks.

    With ``key`` (a params key such as ``model.use_visual``), a row where ``key`` is true is
    compared with the row of the same family that differs from it only there (among the keys
    of the family's relations); without, a row is compared with its ``llm_from`` row."""

    relation: str
    item_type: str
    key: str | None = None


@dataclass(frozen=True)
class Family:
    """One baseline family (see the module docstring)."""

    name: str
    code: str | None = None            # module with train/predict; None: the descriptor's own
    settings: Any = None               # the params dataclass, or "module:Class" (torch modules)
    schema: Any = None                 # "#/$defs/<def>" of config/schema.yaml, a mapping, or
    #                                    None: generated from `settings` (a class)
    reads: Mapping[str, Any] = field(default_factory=dict)  # product -> True | params keys
    llm_from: bool = False             # rows may build on another row's trained LLM
    pipeline_tokenizer: bool | str = True   # or the params key that, when set, names its own
    weight_keys: tuple[str, ...] = ()  # params keys that name pretrained weights
    env: str = "train"                 # conda env of its jobs (envs/<env>.yaml)
    trains: bool = True                # False: no train/predict jobs (its rows bring predictions)
    scores: bool | str = True          # has score_candidates (ranking jobs); or a row key that,
    #                                    when the row sets it, makes the row ranked
    row: Mapping[str, Any] | None = None   # a family without training: the JSON schema
    #                                    ({properties, required}) of its rows' own keys
    relations: tuple[WiringRelation, ...] = ()

    def __post_init__(self):
        unknown = sorted(set(self.reads) - set(PRODUCTS))
        if unknown:
            raise ValueError(f"family {self.name!r}: reads {unknown}; known products: {PRODUCTS}")
        for product, when in self.reads.items():
            if when is not True and not (isinstance(when, tuple) and all(isinstance(k, str) for k in when)):
                raise ValueError(f"family {self.name!r}: reads[{product!r}] must be True or a tuple "
                                 f"of params keys, got {when!r}")


def param(params: Mapping | None, key: str, default=None):
    """The value at the dotted ``key`` of a params block (``model.use_visual``), or ``default``."""
    node: Any = params or {}
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node
