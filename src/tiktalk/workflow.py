"""Helpers the Snakefile calls at DAG-build time. Must stay cheap: no torch imports here.

* :func:`code_files` lists the package source files a stage really imports (found by walking
  the ``import`` statements from the stage's entry modules), so that the rules can declare
  them as inputs: Snakemake tracks a ``script:`` file but not the modules it imports
  (docs/architecture.md). Editing the Maria model then re-trains the Maria family only, and
  editing the metrics code only re-scores.
* :func:`baseline_needs`, :func:`uses_pipeline_tokenizer`, :func:`is_trained`,
  :func:`is_ranked`, :func:`wiring_relations`: what the DAG makes of a baseline, read from its
  family's descriptor (:mod:`tiktalk.families`) and its config block.
* :func:`baseline_job`: the common start of the train/predict/rank scripts (the baseline env's
  interpreter, logging with a failure record, the family's params and inputs).
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Mapping

from tiktalk.logs import script_logging

PACKAGE = "tiktalk"

# Entry modules of each stage; ``{family}`` stands for the baseline family's descriptor and code
# modules (tiktalk.families). A rule may instead name its workflow script (code("table2.py")):
# then the script's own imports are the entries and nothing needs adding here.
FAMILY_ENTRY = "{family}"
STAGE_ENTRIES: dict[str, tuple[str, ...]] = {
    "demo": ("tiktalk.demo.generate",),
    "data": ("tiktalk.data.build", "tiktalk.data.release"),
    "media": ("tiktalk.media.shard",),
    "media_precomputed": ("tiktalk.media.precomputed",),
    "media_coverage": ("tiktalk.media.coverage",),
    "media_report": ("tiktalk.report.media",),
    "c3kg": ("tiktalk.knowledge.c3kg",),
    "knowledge": ("tiktalk.knowledge.retrieve",),
    "tokenizer": ("tiktalk.models.tokenizer_corpus",),
    "train": (FAMILY_ENTRY, "tiktalk.baselines.launch"),
    "predict": (FAMILY_ENTRY,),
    "score": ("tiktalk.metrics.evaluate",),
    "report": ("tiktalk.report.table3", "tiktalk.report.tables", "tiktalk.report.plots",
               "tiktalk.report.items"),
    "bootstrap": ("tiktalk.metrics.bootstrap",),
    "claims": ("tiktalk.report.claims",),
    "training_curves": ("tiktalk.report.curves",),
    "demo_wiring": ("tiktalk.report.items", "tiktalk.report.wiring"),
    "human_eval": ("tiktalk.report.kit.human_eval", "tiktalk.report.kit.context_sources",
                   "tiktalk.report.kit.table4", "tiktalk.report.kit.figure2",
                   "tiktalk.report.kit.frames", "tiktalk.report.kit.clips"),
    "human_eval_frames": ("tiktalk.report.kit.frames",),
    "human_eval_clips": ("tiktalk.report.kit.clips",),
    "rank": (FAMILY_ENTRY, "tiktalk.baselines.ranking"),
    # the paper's other outputs (rules/paper_tables.smk) name their scripts: code("table2.py")
}


def _module_file(src: Path, module: str) -> Path | None:
    rel = module.split(".")[1:]
    base = src.joinpath(*rel) if rel else src
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def package_modules(src: str | Path) -> dict[str, Path]:
    """Every module of the package under ``src`` (the ``tiktalk`` directory): name -> file."""
    srcp = Path(src)
    out = {}
    for path in sorted(srcp.rglob("*.py")):
        parts = [PACKAGE, *path.relative_to(srcp).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports_of(path: Path, module: str) -> set[str]:
    """Names in the package that ``path`` (the module ``module``) imports, anywhere in the file
    (top level or inside functions); ``from a import b`` yields ``a`` and ``a.b`` (b may be a
    submodule), so callers keep the names that are modules."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_pkg = path.name == "__init__.py"
    here = module.split(".") if is_pkg else module.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            # ``from tiktalk.x import y`` may name a submodule y.
            found.update(f"{mod}.{a.name}" for a in node.names)
    return {m for m in found if m == PACKAGE or m.startswith(PACKAGE + ".")}


@lru_cache(maxsize=None)
def _closure(src: str, entries: tuple[str, ...]) -> tuple[str, ...]:
    srcp = Path(src)
    seen: dict[str, Path] = {}
    todo = list(entries)
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        path = _module_file(srcp, module)
        if path is None:
            continue
        seen[module] = path
        # importing a.b.c runs a/__init__.py and a/b/__init__.py too
        parts = module.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        todo.extend(imports_of(path, module))
    return tuple(sorted(str(p) for p in seen.values()))


def _stage_entries(src: Path, stage: str, family: str | None) -> tuple[str, ...]:
    """The entry modules of ``stage``: its :data:`STAGE_ENTRIES` (``{family}``: the family's
    descriptor and code modules), or for ``<script>.py`` the package modules that the workflow
    script imports (``workflow/scripts/<script>.py`` beside ``src``'s ``src/`` directory)."""
    if stage.endswith(".py"):
        script = Path(src).resolve().parents[1] / "workflow" / "scripts" / stage
        if not script.is_file():
            raise ValueError(f"stage {stage!r}: no script {script}")
        return tuple(m for m in sorted(imports_of(script, "__main__")) if _module_file(src, m))
    try:
        entries = STAGE_ENTRIES[stage]
    except KeyError:
        raise ValueError(f"unknown stage {stage!r}; known: {sorted(STAGE_ENTRIES)} or a "
                         f"workflow script (name.py)") from None
    if FAMILY_ENTRY in entries and not family:
        raise ValueError(f"stage {stage!r} needs a baseline family")
    out: list[str] = []
    for entry in entries:
        if entry == FAMILY_ENTRY:
            from tiktalk.families.registry import code_module, family_module

            out += [family_module(family), code_module(family)]
        else:
            out.append(entry)
    return tuple(dict.fromkeys(out))


def code_files(src: str | Path, stage: str, family: str | None = None,
               relative_to: str | Path | None = None) -> list[str]:
    """Package files imported by ``stage`` (and the baseline ``family`` for train/predict/rank);
    ``stage`` is a name of :data:`STAGE_ENTRIES` or a workflow script (``table2.py``), whose
    own imports are then the entries, so a new rule needs no entry here.

    Absolute paths, or with ``relative_to`` (the workflow's working directory) relative to it:
    Snakemake records the set of a job's input paths, so absolute ones would make a finished
    run re-run every job once its directory is moved or mounted elsewhere."""
    resolved = _stage_entries(Path(src), stage, family)
    missing = [e for e in resolved if _module_file(Path(src), e) is None]
    if missing:
        raise ValueError(f"stage {stage!r}: no module file for {missing} under {src}")
    files = _closure(str(Path(src).resolve()), resolved)
    if relative_to is None:
        return list(files)
    return [os.path.relpath(f, Path(relative_to).resolve()) for f in files]


def _family(baseline: Mapping):
    from tiktalk.families.registry import get

    return get(baseline["family"])


def baseline_needs(baseline: Mapping) -> set[str]:
    """Upstream products a baseline reads ('features', 'image_features', 'knowledge'): its
    family's ``reads``, each always or when one of its params keys is true."""
    from tiktalk.families.family import param

    params = baseline.get("params") or {}
    return {product for product, when in _family(baseline).reads.items()
            if when is True or any(param(params, key) for key in when)}


def is_trained(baseline: Mapping) -> bool:
    """Whether the baseline has train/predict jobs (an ``external`` row brings predictions)."""
    return _family(baseline).trains


def is_ranked(baseline: Mapping) -> bool:
    """Whether the baseline ranks the candidate sets: its family scores candidates (or, for a
    family whose ``scores`` names a row key, such as ``external``'s, the row sets it)."""
    scores = _family(baseline).scores
    return bool(baseline.get(scores)) if isinstance(scores, str) else bool(scores)


def baseline_env_name(baseline: Mapping) -> str:
    """The conda env of a baseline's jobs: its ``env:``, else its family's."""
    return baseline.get("env") or _family(baseline).env


def wiring_relations(baselines: Mapping[str, Mapping]) -> list[tuple[str, str, str, str]]:
    """(relation, item type, row, counterpart) of the demo's wiring table, from the families'
    ``relations`` (:class:`tiktalk.families.family.WiringRelation`) over the Table 3 rows of
    ``baselines`` (name -> config block, in the config's order); ordered by item type
    (visual, audio, knowledge), then by row."""
    from tiktalk.families.family import param

    rows = {b: c for b, c in baselines.items() if c.get("table3", True)}
    found = []
    for name, cfg in rows.items():
        fam = _family(cfg)
        keys = [r.key for r in fam.relations if r.key]
        flags = {k: bool(param(cfg.get("params"), k)) for k in keys}
        for rel in fam.relations:
            if rel.key is None:
                other = cfg.get("llm_from")
                if other in rows:
                    found.append((rel.relation, rel.item_type, name, other))
                continue
            if not flags[rel.key]:
                continue
            want = {**flags, rel.key: False}
            for other, ocfg in rows.items():
                if (ocfg["family"] == cfg["family"]
                        and {k: bool(param(ocfg.get("params"), k)) for k in keys} == want):
                    found.append((rel.relation, rel.item_type, name, other))
                    break
    order = ("visual", "audio", "knowledge")
    return sorted(found, key=lambda r: order.index(r[1]) if r[1] in order else len(order))


# ------------------------------------------------------------------ seeds and runs
# A run is one training of a baseline with one seed. The config's `seed` run keeps the
# baseline's own name (results/models/maria/...); every other seed of `seeds` is a run of its
# own, `maria.seed14`, with the same jobs and paths under that name. Baseline names cannot hold
# a dot (config/schema.yaml), so a run name is never a baseline's.
SEED_RUN_MARK = ".seed"


def seed_list(config: dict) -> list[int]:
    """The config's ``seeds`` (each Table 3 row is trained once per seed), default ``[seed]``."""
    seeds = config.get("seeds")
    if seeds is None:
        return [int(config["seed"])]
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"config seeds: need distinct seeds, got {config.get('seeds')!r}")
    return seeds


def run_name(baseline: str, seed: int, base_seed: int) -> str:
    """The run of ``baseline`` trained with ``seed`` (its own name for the config's seed)."""
    return baseline if int(seed) == int(base_seed) else f"{baseline}{SEED_RUN_MARK}{int(seed)}"


def run_baseline(run: str) -> str:
    """The baseline a run trains (``maria.seed14`` -> ``maria``)."""
    return run.split(SEED_RUN_MARK, 1)[0]


def run_seed(run: str, base_seed: int) -> int:
    """The seed a run trains with."""
    _, mark, seed = run.partition(SEED_RUN_MARK)
    return int(seed) if mark else int(base_seed)


def seed_runs(baselines, seeds, base_seed: int) -> dict[str, list[str]]:
    """``{baseline: [its run per seed, in the order of seeds]}``."""
    return {b: [run_name(b, s, base_seed) for s in seeds] for b in baselines}


def config_file(path: str, basedir: str | Path) -> str:
    """A file the config names: as given when it exists (absolute, or from the working
    directory), else the workflow's own (``basedir``: e.g. ``config/demo_claims.yaml`` in a run
    with ``--directory`` elsewhere), relative to the working directory."""
    if os.path.isabs(path) or os.path.exists(path):
        return path
    inside = Path(basedir) / path
    return os.path.relpath(inside, os.getcwd()) if inside.exists() else path


def uses_pipeline_tokenizer(baseline: Mapping) -> bool:
    """Whether a baseline reads the pipeline's tokenizer (config ``tokenizer``) rather than one
    of its own: its family's ``pipeline_tokenizer`` (a params key: unless that key is set; for
    example DialoGPT with ``params.tokenizer`` or a causal LM with a ``base_model`` bring their
    own, and BLIP-2 uses its LLM's)."""
    from tiktalk.families.family import param

    fam = _family(baseline)
    if not fam.trains:
        return False
    if isinstance(fam.pipeline_tokenizer, str):
        return not param(baseline.get("params"), fam.pipeline_tokenizer)
    return bool(fam.pipeline_tokenizer)


_MANIFEST_CACHE: dict[tuple[str, int, int], dict[str, list[str]]] = {}


def manifest_shard_ids(manifest_tsv: str | Path) -> dict[str, list[str]]:
    """shard -> video ids of the manifest (:func:`tiktalk.data.manifest.shard_videos`), parsed
    once per file version (the DAG asks for every shard's ids)."""
    from tiktalk.data.manifest import shard_videos

    path = Path(manifest_tsv)
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    if key not in _MANIFEST_CACHE:
        _MANIFEST_CACHE[key] = shard_videos(path)
    return _MANIFEST_CACHE[key]


def _by_split(paths) -> dict[str, Path]:
    if isinstance(paths, (str, Path)):
        paths = [paths]
    return {Path(p).name.split(".")[0]: Path(p) for p in paths}


def baseline_inputs(named_inputs: dict, tokenizer: dict, seed: int):
    """BaselineInputs from a train/predict rule's named inputs (see rules/common.smk)."""
    from tiktalk.baselines.inputs import BaselineInputs

    if tokenizer["kind"] == "train":
        tok: str | Path = Path(named_inputs["tokenizer"]).parent
    else:
        tok = tokenizer["name"]
    return BaselineInputs(
        dialogues=_by_split(named_inputs["dialogues"]),
        features=[Path(p) for p in named_inputs.get("features", [])],
        knowledge=_by_split(named_inputs["knowledge"]) if "knowledge" in named_inputs else {},
        tokenizer=tok,
        extra_features=[Path(p) for p in named_inputs.get("image_features", [])],
        seed=int(seed),
    )


def family_params(baseline: dict, llm_dir: str | None) -> dict:
    """The params handed to a family's train/predict (the LLM dir wired in by the DAG)."""
    params = json.loads(json.dumps(baseline.get("params", {})))
    if llm_dir:
        params["llm_dir"] = str(llm_dir)
    return params


def canonical(value):
    """``value`` with every mapping's keys sorted, recursively.

    Snakemake decides that params changed by comparing their ``repr``, which for a dict
    depends on key order; so a config file that only lists the same keys in another order
    (an editor, ``yaml.safe_dump``, a merged ``--configfile``) would re-run every stage.
    """
    if isinstance(value, dict):
        return {k: canonical(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, (list, tuple)):
        return type(value)(canonical(v) for v in value)
    return value


def canonicalise_config(config: dict) -> None:
    """Sort the keys of every mapping in ``config``, in place, except the order of the
    baselines themselves (the user's row order in the tables)."""
    for key in list(config):
        value = config[key]
        if key == "baselines" and isinstance(value, dict):
            config[key] = {b: canonical(v) for b, v in value.items()}
        else:
            config[key] = canonical(value)


def export_pythonpath(src: str) -> None:
    """Put the package source first on PYTHONPATH for every job the workflow starts,
    including jobs in per-rule conda envs (`--sdm conda`) and on SLURM nodes."""
    old = os.environ.get("PYTHONPATH", "")
    parts = [src] + [p for p in old.split(os.pathsep) if p and p != src]
    os.environ["PYTHONPATH"] = os.pathsep.join(parts)


ENV_PYTHON_VAR = "TIKTALK_PYTHON_{env}"     # e.g. TIKTALK_PYTHON_LLM for `env: llm`
_IN_ENV_VAR = "TIKTALK_IN_ENV"


def env_python(baseline: dict) -> str | None:
    """The interpreter that runs a baseline's jobs without conda: ``$TIKTALK_PYTHON_<ENV>`` for
    its ``env:`` (``TIKTALK_PYTHON_LLM`` for ``env: llm``, e.g. ``.venv-llm/bin/python``); None
    when the baseline names no env, the variable is unset, or this process already runs in it."""
    env = baseline.get("env")
    if not env or os.environ.get(_IN_ENV_VAR) == env:
        return None
    return os.environ.get(ENV_PYTHON_VAR.format(env=str(env).upper())) or None


def run_in_baseline_env(baseline: dict) -> None:
    """Without conda (`--sdm conda` off), run this job's script again under the baseline env's
    interpreter (:func:`env_python`) and exit with its status; return at once when there is
    none. A train/predict/rank script calls it first thing (:func:`baseline_job`): Snakemake
    runs a ``script:`` as ``python <script file>``, and that file (with the job's pickled
    inputs) exists until the job ends, so the other interpreter runs the very same job."""
    import subprocess
    import sys

    python = env_python(baseline)
    if python is None:
        return
    var = ENV_PYTHON_VAR.format(env=str(baseline["env"]).upper())
    if not Path(python).exists():
        raise FileNotFoundError(f"{var}={python}: no such interpreter (the env of this baseline's "
                                f"jobs without conda; unset it to run them in this one)")
    env = dict(os.environ, **{_IN_ENV_VAR: str(baseline["env"])})
    sys.exit(subprocess.run([python, sys.argv[0], *sys.argv[1:]], env=env).returncode)


@dataclass(frozen=True)
class BaselineJob:
    """What a train/predict/rank script works with (:func:`baseline_job`)."""

    baseline: dict          # the baseline's config block (``params.baseline``)
    params: dict            # :func:`family_params`: its params, the LLM dir wired in
    inputs: Any             # :func:`baseline_inputs` (a ``tiktalk.baselines.inputs.BaselineInputs``)
    log: Any                # the job's logger (:func:`tiktalk.logs.script_logging`)

    @property
    def family(self) -> str:
        return self.baseline["family"]


@contextlib.contextmanager
def baseline_job(sm) -> Iterator[BaselineJob]:
    """The common start of a train/predict/rank script, ``sm`` its ``snakemake`` object (params
    ``baseline``, ``llm_dir``, ``tokenizer``, ``seed``; the named inputs of rules/common.smk):
    run under the baseline env's interpreter when there is one (:func:`run_in_baseline_env`),
    then, inside the job's logging with its failure record (so that errors in building the
    params and inputs are recorded too), yield the :class:`BaselineJob`."""
    baseline = sm.params.baseline
    run_in_baseline_env(baseline)  # without conda: $TIKTALK_PYTHON_<ENV> runs this job
    with script_logging(sm.log[0], sm.threads, job=sm) as log:
        yield BaselineJob(baseline=baseline, params=family_params(baseline, sm.params.llm_dir),
                          inputs=baseline_inputs(dict(sm.input.items()), sm.params.tokenizer,
                                                 sm.params.seed),
                          log=log)
