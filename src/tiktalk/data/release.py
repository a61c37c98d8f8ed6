"""Release adapter: ``release/{split}.json`` -> canonical dialogue rows (formats.py).

The official TikTalk release is one JSON file per split keyed by Douyin video id (item_id);
its inner layout is only given with the data, so this module is the ONE place that knows it.
The layout read here (also written by the embedded demo)::

    {
      "<video_id>": {
        "dialogues": [
          {"context": ["utterance", ...],          # >= 1 turn, oldest first
           "response": "target"}                   # train
          {"context": [...],
           "responses": ["ref1", ..., "ref5"]}     # val / test: exactly 5 references
        ]
      },
      ...
    }

Dialogue ids are ``f"{video_id}_{k}"`` with ``k`` the 0-based index in the video's
``dialogues`` list (:func:`dialogue_id`). Rows come out sorted by video id, then ``k``.

Validation is a JSON schema (:func:`release_schema`) plus checks it cannot express (video id
pattern, duplicate keys). Every problem is collected with its file and record (video id and
dialogue index) and one :class:`ReleaseError` lists them all; nothing is dropped silently.
To read another layout, write another ``load_*`` function that yields the same rows.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Iterable

import jsonschema

from tiktalk.formats import N_REFERENCES, SPLITS, VIDEO_ID_PATTERN

DEFAULT_VIDEO_ID_PATTERN = VIDEO_ID_PATTERN    # the one default, shared with the media stage
_NONBLANK = {"type": "string", "pattern": r"\S"}


class ReleaseError(ValueError):
    """A release file does not match the layout; ``problems`` lists every bad record."""

    def __init__(self, path: str | os.PathLike, problems: list[str]):
        self.path = str(path)
        self.problems = list(problems)
        shown = "\n  ".join(self.problems[:50])
        more = f"\n  ... and {len(self.problems) - 50} more" if len(self.problems) > 50 else ""
        super().__init__(f"{path}: {len(self.problems)} problem(s) in the release file:\n  {shown}{more}")


def dialogue_id(video_id: str, index: int) -> str:
    """Canonical dialogue id of the ``index``-th (0-based) dialogue of ``video_id``."""
    return f"{video_id}_{index}"


def release_schema(split: str) -> dict:
    """JSON schema of one release file of ``split`` (train: "response"; val/test: 5 "responses")."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    if split == "train":
        target = {"response": _NONBLANK}
    else:
        target = {"responses": {"type": "array", "items": _NONBLANK,
                                "minItems": N_REFERENCES, "maxItems": N_REFERENCES}}
    dialogue = {
        "type": "object",
        "properties": {"context": {"type": "array", "items": _NONBLANK, "minItems": 1}, **target},
        "required": ["context", *target],
        "additionalProperties": False,
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "minProperties": 1,
        "additionalProperties": {
            "type": "object",
            "properties": {"dialogues": {"type": "array", "items": dialogue, "minItems": 1}},
            "required": ["dialogues"],
            "additionalProperties": False,
        },
    }


def invalid_video_ids(ids: Iterable[str], pattern: str = DEFAULT_VIDEO_ID_PATTERN) -> list[str]:
    """The ids in ``ids`` that are not strings matching all of ``pattern`` (in input order)."""
    rx = re.compile(pattern)
    return [v for v in ids if not isinstance(v, str) or rx.fullmatch(v) is None]


def _where(path_parts: list) -> str:
    """'video 123 dialogue 2 field "responses"' from a JSON path inside a release file."""
    if not path_parts:
        return "top level"
    out = [f"video {path_parts[0]}"]
    rest = path_parts[1:]
    if rest[:1] == ["dialogues"]:
        rest = rest[1:]
        if rest:
            out.append(f"dialogue {rest[0]}")
            rest = rest[1:]
        else:
            out.append('field "dialogues"')
    if rest:
        out.append(f'field "{rest[0]}"' + "".join(f"[{p}]" for p in rest[1:]))
    return " ".join(out)


def _message(error: jsonschema.ValidationError) -> str:
    parts = list(error.absolute_path)
    if error.validator in ("minItems", "maxItems") and parts and parts[-1] == "responses":
        return f"has {len(error.instance)} references, expected {N_REFERENCES}"
    if error.validator == "required":
        return error.message.replace("is a required property", "is missing")
    if error.validator == "pattern" and isinstance(error.instance, str):
        return "is empty or blank"
    if error.validator == "additionalProperties":
        return error.message
    if error.validator == "type":
        return f"has type {type(error.instance).__name__}, expected {error.validator_value}"
    if error.validator == "minProperties" and not parts:
        return "contains no videos"
    return error.message


class _Object(dict):
    """A parsed JSON object that remembers the keys it saw more than once."""

    duplicates: tuple = ()


def _object_hook(pairs) -> _Object:
    obj = _Object()
    dups = []
    for key, value in pairs:
        if key in obj:
            dups.append(key)
        obj[key] = value
    obj.duplicates = tuple(dups)
    return obj


def _duplicate_problems(data, path: list) -> list[str]:
    """Duplicate keys anywhere in ``data`` (json would keep the last one silently)."""
    problems = []
    if isinstance(data, dict):
        for key in getattr(data, "duplicates", ()):
            if path:
                problems.append(f"{_where(path)}: duplicate key {key!r} (only the last would be kept)")
            else:
                problems.append(f"video {key}: duplicate video id (only the last would be kept)")
        for key, value in data.items():
            problems.extend(_duplicate_problems(value, path + [key]))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            problems.extend(_duplicate_problems(value, path + [i]))
    return problems


def _load_json(path: Path):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh, object_pairs_hook=_object_hook)
    except json.JSONDecodeError as exc:
        raise ReleaseError(path, [f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"]) from None
    except UnicodeDecodeError as exc:
        raise ReleaseError(path, [f"not UTF-8 text: {exc}"]) from None
    except OSError as exc:
        raise ReleaseError(path, [f"cannot read: {exc.strerror or exc}"]) from None


def validate_release(data, split: str, video_id_pattern: str = DEFAULT_VIDEO_ID_PATTERN) -> list[str]:
    """All problems of an already-parsed release object, each naming its record."""
    problems: list[str] = []
    validator = jsonschema.Draft202012Validator(release_schema(split))
    def order(error):
        return [(0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in error.absolute_path]

    for error in sorted(validator.iter_errors(data), key=order):
        problems.append(f"{_where(list(error.absolute_path))}: {_message(error)}")
    if isinstance(data, dict):
        for vid in invalid_video_ids(data.keys(), video_id_pattern):
            problems.append(f"video {vid!r}: id does not match {video_id_pattern!r}")
    return problems


def load_release(
    path: str | os.PathLike,
    split: str,
    video_id_pattern: str = DEFAULT_VIDEO_ID_PATTERN,
) -> list[dict]:
    """Canonical dialogue rows of one release file (formats.py "Dialogue table").

    Raises :class:`ReleaseError` listing every malformed record (with file, video id and
    dialogue index) if anything is wrong; returns all rows otherwise.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    path = Path(path)
    data = _load_json(path)
    problems = _duplicate_problems(data, [])
    problems.extend(validate_release(data, split, video_id_pattern))
    if problems:
        raise ReleaseError(path, problems)
    rows = []
    for vid in sorted(data):
        for k, dialogue in enumerate(data[vid]["dialogues"]):
            responses = [dialogue["response"]] if split == "train" else list(dialogue["responses"])
            rows.append({
                "dialogue_id": dialogue_id(vid, k),
                "video_id": vid,
                "split": split,
                "context": list(dialogue["context"]),
                "responses": responses,
            })
    return rows
