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
