"""DAG-time validation of the workflow config: one line per problem, naming its path.

The Snakefile calls :func:`check_config` right after the config is loaded, before any rule
exists, so a typo anywhere (``media.extract.max_frame``, a baseline's ``params.model.hiden``)
fails the dry-run at once instead of inside a job after the downloads. Every problem is ONE
line that names the full key path and, for an unknown key, the closest known key::

    media.extract: unknown key 'max_frame'; did you mean 'max_frames'?
    baselines.maria.params.model: unknown key 'hiden'; did you mean 'hidden_size'?
    data.shard_size: 0 is less than the minimum of 1

The rules come from config/schema.yaml (JSON schema, ``additionalProperties: false`` at every
level) and the baseline families (:mod:`tiktalk.families`): :func:`load_schema` adds each
family's name to the ``family`` enum and applies its params schema (or, for a family without
training, the schema of its rows' own keys) to its rows. This module turns jsonschema's errors
into those lines, then checks what a schema cannot say (:func:`family_problems`). It never
fills in schema defaults: the config the jobs see is exactly the file(s) given.

DAG time, beside :mod:`tiktalk.workflow` at the top of the layers: imports ``jsonschema``,
``yaml``, :mod:`tiktalk.settings`, :mod:`tiktalk.weights.spec`, the family descriptors and
:mod:`tiktalk.media.resolvers` (standard library only), never torch.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable, Mapping

from tiktalk.settings import unknown_key_message

MAX_VALUE_CHARS = 80


class ConfigError(ValueError):
    """The config does not match the schema; ``lines`` holds one line per problem."""

    def __init__(self, lines: list[str], source: str = "config"):
        self.lines = list(lines)
        super().__init__("\n".join(self.lines) if self.lines else f"{source}: invalid")


def load_schema(path: str | Path, families: bool = True) -> dict:
    """config/schema.yaml, with the baseline families applied (:func:`with_families`)."""
    import yaml

    with open(path, encoding="utf-8") as fh:
        schema = yaml.safe_load(fh)
    return with_families(schema) if families else schema


def params_schema(family) -> dict:
    """The JSON schema of a family's ``params:``: its ``schema`` (a ``#/$defs/...`` reference
    into config/schema.yaml, or a mapping), else generated from its settings dataclass."""
    from tiktalk.settings import json_schema

    if isinstance(family.schema, str):
        return {"$ref": family.schema}
    if family.schema is not None:
        return dict(family.schema)
    if not isinstance(family.settings, type):
        raise TypeError(f"family {family.name!r}: no schema, and settings is not a dataclass to "
                        f"generate it from ({family.settings!r})")
    return json_schema(family.settings)


def with_families(schema: dict) -> dict:
    """``schema`` with the families of :mod:`tiktalk.families` in a baseline's block: the
    ``family`` enum, and per family an if/then that applies its params schema (``params``
    required) or, for a family without training, its ``row`` schema; the row keys of such
    families join the block's properties (:func:`family_problems` keeps them to their family)."""
    import copy

    from tiktalk.families.registry import families

    schema = copy.deepcopy(schema)
    row = schema["properties"]["baselines"]["additionalProperties"]
    row["properties"]["family"] = {"enum": sorted(families()),
                                   "description": "the baseline's family (tiktalk/families/<name>.py)"}
    rules = row.setdefault("allOf", [])
    for fam in families().values():
        if fam.trains:
            then = {"required": ["params"], "properties": {"params": params_schema(fam)}}
        else:
            then = dict(fam.row or {})
            row["properties"].update((fam.row or {}).get("properties", {}))
        rules.append({"if": {"properties": {"family": {"const": fam.name}}, "required": ["family"]},
                      "then": then})
    return schema


def key_path(parts: Iterable[Any]) -> str:
    """``media.extract.max_frames`` / ``evaluation.splits[1]`` from a JSON path."""
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += f".{p}" if out else str(p)
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 3] + "..."


def _known_keys(schema: Mapping) -> list[str]:
    return sorted(schema.get("properties", {}))


def _unexpected(instance: Mapping, schema: Mapping) -> list[str]:
    props = schema.get("properties", {})
    patterns = [re.compile(p) for p in schema.get("patternProperties", {})]
    return [k for k in instance if k not in props and not any(p.search(str(k)) for p in patterns)]


def _lines_of(error) -> list[str]:
    """The line(s) for one jsonschema error (a combinator error is reduced to its best match)."""
    from jsonschema.exceptions import best_match

    if error.validator in ("anyOf", "oneOf") and error.context:
        return _lines_of(best_match(error.context))
    where = key_path(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        known = _known_keys(error.schema)
        return [unknown_key_message(where or "config", str(k), known)
                for k in _unexpected(error.instance, error.schema)]
    if error.validator == "required":
        missing = [k for k in error.validator_value if k not in error.instance]
        return [f"{key_path([*error.absolute_path, k])}: required key is missing" for k in missing]
    if error.validator == "enum":
        return [f"{where}: {_short(error.instance)} is not one of {list(error.validator_value)}"]
    if error.validator == "const":
        return [f"{where}: {_short(error.instance)} must be {error.validator_value!r}"]
    if error.validator == "type":
        want = error.validator_value
        want = " or ".join(want) if isinstance(want, list) else want
        return [f"{where}: {_short(error.instance)} is not of type {want}"]
    if error.validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
                           "minItems", "maxItems", "minLength", "pattern", "minProperties"):
        msg = error.message
        if len(msg) > 2 * MAX_VALUE_CHARS:
            msg = f"{_short(error.instance)} fails {error.validator} {error.validator_value!r}"
        return [f"{where or 'config'}: {msg}"]
    if error.validator == "propertyNames":
        return [f"{where or 'config'}: key {_short(error.instance)} does not match "
                f"{error.schema.get('pattern', error.validator_value)!r}"]
    return [f"{where or 'config'}: {error.message[: 2 * MAX_VALUE_CHARS]}"]


def config_problems(config: Mapping, schema: Mapping) -> list[str]:
    """Every problem of ``config`` against ``schema``, one line each, sorted by key path."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    lines: list[str] = []
    for error in validator.iter_errors(config):
        lines.extend(_lines_of(error))
    # stable, de-duplicated, ordered by path (errors of one key together)
    return sorted(dict.fromkeys(lines), key=lambda s: s.split(":", 1)[0])


def check_config(config: Mapping, schema_path: str | Path) -> None:
    """Raise :class:`ConfigError` (one line per problem) if ``config`` breaks the schema."""
    lines = config_problems(config, load_schema(schema_path))
    if lines:
        raise ConfigError(lines)


def workflow_config_problems(config: Mapping, schema_path: str | Path, exists=None) -> list[str]:
    """Everything the Snakefile checks before any rule exists, one line per problem: the
    schema (every required key, including those a real release needs, such as
    ``knowledge.c3kg``), the weights block's consistency, that every pretrained model is a
    local path (compute jobs run offline), and the files the video source names (an ``id,url``
    table with an empty url or an id listed twice, a missing cookies file)."""
    from tiktalk.media.resolvers import source_problems
    from tiktalk.weights.spec import WeightsSpec, offline_problems

    lines = config_problems(config, load_schema(schema_path))
    if lines:                      # the weights checks assume a well-formed config
        return lines
    lines = family_problems(config)
    if lines:
        return lines
    spec = WeightsSpec.from_config(config)
    return (spec.problems(config) + offline_problems(config, spec, exists, weight_keys(config))
            + source_problems(config["media"]["source"]))


def weight_keys(config: Mapping) -> tuple[str, ...]:
    """Every config key that names a pretrained model: the stages' (``WEIGHT_KEYS``) and each
    baseline's, its family's ``weight_keys`` under its ``params``."""
    from tiktalk.families.registry import get
    from tiktalk.weights.spec import WEIGHT_KEYS

    rows = tuple(f"baselines.{name}.params.{key}" for name, row in config.get("baselines", {}).items()
                 for key in get(row["family"]).weight_keys)
    return WEIGHT_KEYS + rows


def family_problems(config: Mapping) -> list[str]:
    """What the schema cannot say about the baselines, one line each: a label that nearly
    spells a paper row (a typo would lose the paper's numbers beside it), the keys that belong to
    another family (``params`` on an ``external`` row, ``predictions`` on a trained one,
    ``llm_from`` where the family builds on no LLM), an ``llm_from`` that is no trained row,
    and for a row that brings its files (family ``external``), a split it lacks and the first
    bad lines of each file (missing, not JSON, not the format)."""
    from tiktalk.families.registry import families

    from tiktalk.report.paper import TABLE3_ROWS

    fams = families()
    extra_keys = {k for f in fams.values() for k in (f.row or {}).get("properties", {})}
    baselines = config.get("baselines", {})
    lines = []
    for name, row in baselines.items():
        fam, where = fams[row["family"]], f"baselines.{name}"
        near = _near_paper_row(row["label"], TABLE3_ROWS)
        if near:
            lines.append(f"{where}.label: {row['label']!r} is not a row of the paper's Table 3; "
                         f"did you mean {near!r}? (a label far from every paper row is a row of "
                         f"your own)")
        own = set((fam.row or {}).get("properties", {}))
        foreign = sorted((extra_keys - own) & set(row))
        if not fam.trains:
            foreign = sorted({"params", "llm_from", "env"} & set(row)) + foreign
        elif "llm_from" in row and not fam.llm_from:
            foreign.append("llm_from")
        lines += [f"{where}.{key}: a row of family {fam.name!r} takes no {key!r}" for key in foreign]
        llm = row.get("llm_from")
        if fam.llm_from and llm is not None and (
                llm not in baselines or not fams[baselines[llm]["family"]].trains):
            lines.append(f"{where}.llm_from: {llm!r} is not a trained baseline of the config")
        if not fam.trains:
            lines += _brought_file_problems(where, row, config)
    return lines


def _near_paper_row(label: str, rows) -> str | None:
    """The paper row a label spells but for case and punctuation (a typo such as
    ``Maria-C3KG`` or ``TEXT``), or None: one of the rows, or a label of your own."""
    def key(text: str) -> str:
        return re.sub(r"[\W_]+", "", text).casefold()

    if label in rows:
        return None
    return next((r for r in rows if key(r) == key(label)), None)


def _brought_file_problems(where: str, row: Mapping, config: Mapping) -> list[str]:
    """The files of a row that brings its predictions (and candidate scores): each split the
    run scores, rates or shows (evaluation splits, Table 3's, Figure 4's; for scores the
    ranking splits) must have one, and each file must read (path:line of its first problems)."""
    from tiktalk.data.predictions import predictions_problems
    from tiktalk.metrics.ranking import candidate_scores_problems
    from tiktalk.report.paper_settings import paper_tables_settings

    ev = config["evaluation"]
    pt = paper_tables_settings(config.get("paper_tables"))
    needed = {"predictions": {*ev["splits"], ev["table_split"], pt.cases.split},
              "scores": set(pt.ranking.splits)}
    check = {"predictions": predictions_problems, "scores": candidate_scores_problems}
    lines = []
    for key in ("predictions", "scores"):
        files = row.get(key)
        if files is None:
            continue
        lines += [f"{where}.{key}: no file for split {split!r} (the run needs "
                  f"{sorted(needed[key])})" for split in sorted(needed[key] - set(files))]
        lines += [f"{where}.{key}.{split}: {problem}" for split, path in sorted(files.items())
                  for problem in check[key](path)]
    return lines


def dump_effective_config(config: Mapping, path: str | None, environ: Mapping | None = None) -> None:
    """Write the config the jobs see (and the hub switches they inherit) to ``path`` as JSON.

    The Snakefile calls this with ``$TIKTALK_DUMP_CONFIG``: a debugging aid that also lets the
    tests compare the effective config with the file, key for key, through a dry-run.
    """
    if not path:
        return
    import json
    import os

    env = os.environ if environ is None else environ
    from tiktalk.weights.spec import OFFLINE_ENV

    payload = {"config": config, "env": {k: env.get(k) for k in sorted(OFFLINE_ENV)}}
    Path(path).write_text(json.dumps(payload, ensure_ascii=False, indent=1, sort_keys=True),
                          encoding="utf-8")
