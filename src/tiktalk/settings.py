"""Strict construction of the package's settings dataclasses from config mappings.

Every config block the user writes (a baseline's ``model:``/``train:``, the media settings, ...)
is turned into an immutable dataclass with :func:`from_mapping`: an unknown key is an error that
names the block, the key and the closest known key, so a typo fails at once instead of being
silently ignored. Nested settings dataclasses are built recursively; lists become tuples when
the field's default is a tuple.

Layer 0: imports nothing from the package.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Mapping, TypeVar

T = TypeVar("T")


class SettingsError(ValueError):
    """A config block that does not match its settings dataclass."""


def closest(name: str, known) -> str | None:
    """The known name closest to ``name`` (difflib), or None when nothing is close."""
    match = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.6)
    return match[0] if match else None


def unknown_key_message(where: str, key: str, known) -> str:
    hint = closest(key, known)
    suggestion = f"; did you mean {hint!r}?" if hint else f"; known: {sorted(known)}"
    return f"{where}: unknown key {key!r}{suggestion}"


def _field_types(cls) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # pragma: no cover - unresolvable annotations: no nested conversion
        return {}


def _settings_class(tp) -> type | None:
    """The dataclass inside an annotation like ``X``, ``X | None`` or ``Optional[X]``."""
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return tp
    for arg in typing.get_args(tp):
        if dataclasses.is_dataclass(arg) and isinstance(arg, type):
            return arg
    return None


def from_mapping(cls: type[T], data: Mapping | None, where: str | None = None) -> T:
    """``cls(**data)`` with every key checked; nested dataclass fields built from mappings.

    ``where`` names the block in error messages (e.g. ``"baselines.maria.params.model"``);
    it defaults to the class name.
    """
    where = where or cls.__name__
    if data is None:
        data = {}
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise SettingsError(f"{where}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            raise SettingsError(unknown_key_message(where, key, fields))
    types = _field_types(cls)
    kwargs = {}
    for key, value in data.items():
        sub = _settings_class(types.get(key))
        if sub is not None and not isinstance(value, sub):
            if value is None and type(None) in typing.get_args(types.get(key)):
                kwargs[key] = None          # an Optional nested block left empty
            else:
                kwargs[key] = from_mapping(sub, value, f"{where}.{key}")
        elif isinstance(value, list) and isinstance(fields[key].default, tuple):
            kwargs[key] = tuple(value)
        else:
            kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise SettingsError(f"{where}: {exc}") from None


def to_mapping(obj) -> dict:
    """The plain-dict form of a settings dataclass (tuples become lists), for JSON/YAML."""
    def plain(v):
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v
    return plain(dataclasses.asdict(obj))


_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string",
               dict: "object", list: "array", tuple: "array"}


def json_schema(cls) -> dict:
    """The JSON schema of a settings dataclass's config block: one closed object whose keys are
    its init fields, each typed from its annotation (``int``, ``float``, ``bool``, ``str``,
    ``X | None``, ``tuple[...]`` / ``list[...]``, ``dict``, ``Literal[...]``, a nested settings
    dataclass); fields without a default are required. What the config check applies to the
    ``params:`` of a family that has no schema of its own (:mod:`tiktalk.families.family`)."""
    try:
        hints = typing.get_type_hints(cls)
    except Exception as exc:
        raise SettingsError(f"{cls.__qualname__}: cannot resolve its annotations ({exc})") from None
    props, required = {}, []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        props[f.name] = _type_schema(hints.get(f.name, Any), f"{cls.__name__}.{f.name}")
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(f.name)
    out = {"description": f"{cls.__module__}.{cls.__qualname__}", "type": "object",
           "additionalProperties": False, "properties": props}
    if required:
        out["required"] = required
    return out


def _type_schema(tp, where: str) -> dict:
    if tp is Any:
        return {}
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return json_schema(tp)
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (typing.Union, types.UnionType):
        subs = [_type_schema(a, where) for a in args if a is not type(None)]
        nullable = type(None) in args
        if len(subs) == 1 and set(subs[0]) == {"type"}:
            kinds = subs[0]["type"] if isinstance(subs[0]["type"], list) else [subs[0]["type"]]
            return {"type": kinds + (["null"] if nullable else [])}
        return {"anyOf": subs + ([{"type": "null"}] if nullable else [])}
    base = origin or tp
    if base in (list, tuple):
        items = [a for a in args if a is not Ellipsis]
        out = {"type": "array"}
        if len(items) == 1 or (base is tuple and len(set(items)) == 1 and items):
            out["items"] = _type_schema(items[0], where)
        return out
    if base in _JSON_TYPES:
        return {"type": _JSON_TYPES[base]}
    raise SettingsError(f"{where}: no JSON schema for the annotation {tp!r}")
