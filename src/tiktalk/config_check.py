"""DAG-time validation of the workflow config: one line per problem, naming its path.

The Snakefile calls :func:`check_config` right after the config is loaded, before any rule
exists, so a typo anywhere (``media.extract.max_frame``, a baseline's ``params.model.hiden``)
fails the dry-run at once instead of inside a job after the downloads. Every problem is ONE
line that names the full key path and, for an unknown key, the closest known key::

    media.extract: unknown key 'max_frame'; did you mean 'max_frames'?
    baselines.maria.params.model: unknown key 'hiden'; did you mean 'hidden_size'?
    data.shard_size: 0 is less than the minimum of 1

The rules come from config/schema.yaml (JSON schema, ``additionalProperties: false`` at every
level); this module only turns jsonschema's errors into those lines. It never fills in schema
defaults: the config the jobs see is exactly the file(s) given.

DAG time, beside :mod:`tiktalk.workflow` at the top of the layers: imports ``jsonschema``,
``yaml``, :mod:`tiktalk.settings`, :mod:`tiktalk.weights.spec` and
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


def load_schema(path: str | Path) -> dict:
    import yaml

    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


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
    spec = WeightsSpec.from_config(config)
    return (spec.problems(config) + offline_problems(config, spec, exists)
            + source_problems(config["media"]["source"]))


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
