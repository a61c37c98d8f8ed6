"""Release adapter: ``release/{split}.json`` -> canonical dialogue rows (formats.py).

What is known of the official TikTalk release: one JSON file per split, ``train.json`` and
``test.json`` (``val.json`` may be absent), each an object keyed by Douyin video id
(``item_id``); the layout inside is only given with the data, so this module is the ONE place
that knows it, and the names of the fields it reads are configurable (config
``release.fields``, :class:`ReleaseFields`). The layout read (and written by the embedded
demo), with the default field names::

    {
      "<video_id>": {
        "dialogues": [
          {"context": ["utterance", ...],          # >= 1 turn, oldest first
           "response": "target"}                   # train
          {"context": [...],
           "responses": ["ref1", ..., "ref5"]}     # val / test: exactly 5 references
        ],
        "description": "..."                       # optional: read for Table 5 (topics) only
        ...                                        # any other field: counted, not read
      },
      ...
    }

Strict on the fields it uses, tolerant of the rest: a missing or mistyped used field is an
error naming the file and the record; any other field of a video or a dialogue is ignored and
counted in the release report (:func:`read_release`, written beside the dialogue table), never
an error.

Dialogue ids are ``f"{video_id}_{k}"`` with ``k`` the 0-based index in the video's
``dialogues`` list (:func:`dialogue_id`). Rows come out sorted by video id, then ``k``.

No val split (no ``val.json``): :func:`carve_val` carves one from train the paper's way
(sec. 3.2): a train dialogue's *genuine responses* are the responses of the video's train
dialogues with the same context; videos with at least one context of >= ``min_responses``
distinct genuine responses are eligible; ``videos`` of them (1,000 by default) are chosen by a
seeded hash order, and each such context becomes one val dialogue with its first
``references`` (5) distinct responses, in release order. A chosen video leaves train entirely
(the splits share no video). Deterministic: the train and the val job compute the same carving.

Validation is a JSON schema (:func:`release_schema`) plus checks it cannot express (video id
pattern, duplicate keys). Every problem is collected with its file and record (video id and
dialogue index) and one :class:`ReleaseError` lists them all; nothing is dropped silently.
To read another layout, write another ``read_*`` function that yields the same rows.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Mapping

import jsonschema

from tiktalk.formats import N_REFERENCES, SPLITS, VIDEO_ID_PATTERN

DEFAULT_VIDEO_ID_PATTERN = VIDEO_ID_PATTERN    # the one default, shared with the media stage
_NONBLANK = {"type": "string", "pattern": r"\S"}


@dataclass(frozen=True)
class ReleaseFields:
    """Names of the fields the adapter reads (config ``release.fields``)."""

    dialogues: str = "dialogues"      # per video: the list of its dialogues
    context: str = "context"          # per dialogue: its turns, oldest first
    response: str = "response"        # train: the one response
    responses: str = "responses"      # val / test: the 5 references
    description: str = "description"  # per video, optional: its description (Table 5 topics)

    @classmethod
    def from_config(cls, cfg: Mapping | None) -> "ReleaseFields":
        from tiktalk.settings import from_mapping

        return from_mapping(cls, cfg, "release.fields")


@dataclass(frozen=True)
class ValCarving:
    """How val is carved from train when the release has no val split (``release.val_from_train``)."""

    videos: int = 1000                # paper: 1,000 val videos
    min_responses: int = 5            # paper: dialogues with at least five genuine responses
    references: int = 5               # paper: five of them are the references
    seed: int = 13

    @classmethod
    def from_config(cls, cfg: Mapping | None) -> "ValCarving":
        from tiktalk.settings import from_mapping

        carving = from_mapping(cls, cfg, "release.val_from_train")
        if carving.references != N_REFERENCES:
            raise ValueError(f"release.val_from_train.references: the dialogue tables hold "
                             f"{N_REFERENCES} references, got {carving.references}")
        if carving.min_responses < carving.references:
            raise ValueError("release.val_from_train.min_responses must be >= references")
        return carving


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


def release_schema(split: str, fields: ReleaseFields = ReleaseFields()) -> dict:
    """JSON schema of one release file of ``split`` (train: one response; val/test: 5
    references). Only the fields the adapter reads are constrained: others are allowed."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    if split == "train":
        target = {fields.response: _NONBLANK}
    else:
        target = {fields.responses: {"type": "array", "items": _NONBLANK,
                                     "minItems": N_REFERENCES, "maxItems": N_REFERENCES}}
    dialogue = {
        "type": "object",
        "properties": {fields.context: {"type": "array", "items": _NONBLANK, "minItems": 1}, **target},
        "required": [fields.context, *target],
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "minProperties": 1,
        "additionalProperties": {
            "type": "object",
            "properties": {fields.dialogues: {"type": "array", "items": dialogue, "minItems": 1}},
            "required": [fields.dialogues],
        },
    }


def invalid_video_ids(ids: Iterable[str], pattern: str = DEFAULT_VIDEO_ID_PATTERN) -> list[str]:
    """The ids in ``ids`` that are not strings matching all of ``pattern`` (in input order)."""
    rx = re.compile(pattern)
    return [v for v in ids if not isinstance(v, str) or rx.fullmatch(v) is None]


def _where(path_parts: list, fields: ReleaseFields = ReleaseFields()) -> str:
    """'video 123 dialogue 2 field "responses"' from a JSON path inside a release file."""
    if not path_parts:
        return "top level"
    out = [f"video {path_parts[0]}"]
    rest = path_parts[1:]
    if rest[:1] == [fields.dialogues]:
        rest = rest[1:]
        if rest:
            out.append(f"dialogue {rest[0]}")
            rest = rest[1:]
        else:
            out.append(f'field "{fields.dialogues}"')
    if rest:
        out.append(f'field "{rest[0]}"' + "".join(f"[{p}]" for p in rest[1:]))
    return " ".join(out)


def _message(error: jsonschema.ValidationError, fields: ReleaseFields = ReleaseFields()) -> str:
    parts = list(error.absolute_path)
    if error.validator in ("minItems", "maxItems") and parts and parts[-1] == fields.responses:
        return f"has {len(error.instance)} references, expected {N_REFERENCES}"
    if error.validator == "required":
        return error.message.replace("is a required property", "is missing")
    if error.validator == "pattern" and isinstance(error.instance, str):
        return "is empty or blank"
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


def _duplicate_problems(data, fields: ReleaseFields = ReleaseFields()) -> list[str]:
    """Duplicate keys among what the adapter reads (json would keep the last one silently):
    video ids, a video's dialogues field, a dialogue's used fields."""
    problems = []
    if not isinstance(data, dict):
        return problems
    used = {fields.context, fields.response, fields.responses}
    for key in getattr(data, "duplicates", ()):
        problems.append(f"video {key}: duplicate video id (only the last would be kept)")
    for vid, video in data.items():
        if not isinstance(video, dict):
            continue
        if fields.dialogues in getattr(video, "duplicates", ()):
            problems.append(f"video {vid}: duplicate key {fields.dialogues!r} (only the last would be kept)")
        dialogues = video.get(fields.dialogues)
        for k, dialogue in enumerate(dialogues if isinstance(dialogues, list) else []):
            for key in getattr(dialogue, "duplicates", ()):
                if key in used:
                    problems.append(f"video {vid} dialogue {k}: duplicate key {key!r} "
                                    f"(only the last would be kept)")
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


def validate_release(data, split: str, video_id_pattern: str = DEFAULT_VIDEO_ID_PATTERN,
                     fields: ReleaseFields = ReleaseFields()) -> list[str]:
    """All problems of an already-parsed release object, each naming its record."""
    problems: list[str] = []
    validator = jsonschema.Draft202012Validator(release_schema(split, fields))

    def order(error):
        return [(0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in error.absolute_path]

    for error in sorted(validator.iter_errors(data), key=order):
        problems.append(f"{_where(list(error.absolute_path), fields)}: {_message(error, fields)}")
    if isinstance(data, dict):
        for vid in invalid_video_ids(data.keys(), video_id_pattern):
            problems.append(f"video {vid!r}: id does not match {video_id_pattern!r}")
    return problems


def ignored_fields(data: Mapping, split: str, fields: ReleaseFields = ReleaseFields()) -> dict[str, int]:
    """Fields the adapter does not read, with how many records carry them:
    ``{"video.<name>": n, "dialogue.<name>": n}`` (sorted)."""
    used = {fields.context, fields.response if split == "train" else fields.responses}
    counts: Counter = Counter()
    for video in data.values():
        counts.update(f"video.{k}" for k in video if k != fields.dialogues)
        for dialogue in video[fields.dialogues]:
            counts.update(f"dialogue.{k}" for k in dialogue if k not in used)
    return dict(sorted(counts.items()))


def read_release(
    path: str | os.PathLike,
    split: str,
    video_id_pattern: str = DEFAULT_VIDEO_ID_PATTERN,
    fields: ReleaseFields = ReleaseFields(),
) -> tuple[list[dict], dict]:
    """(canonical dialogue rows, report) of one release file (formats.py "Dialogue table").

    Raises :class:`ReleaseError` listing every malformed record (with file, video id and
    dialogue index) if a used field is missing or wrong. The report counts what was read and
    every field that was not (``ignored_fields``).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    path = Path(path)
    data = _load_json(path)
    problems = _duplicate_problems(data, fields)
    problems.extend(validate_release(data, split, video_id_pattern, fields))
    if problems:
        raise ReleaseError(path, problems)
    rows = []
    for vid in sorted(data):
        for k, dialogue in enumerate(data[vid][fields.dialogues]):
            if split == "train":
                responses = [dialogue[fields.response]]
            else:
                responses = list(dialogue[fields.responses])
            rows.append({
                "dialogue_id": dialogue_id(vid, k),
                "video_id": vid,
                "split": split,
                "context": list(dialogue[fields.context]),
                "responses": responses,
            })
    report = {"file": str(path), "split": split, "fields": asdict(fields), "n_videos": len(data),
              "n_dialogues": len(rows), "ignored_fields": ignored_fields(data, split, fields)}
    return rows, report


def load_release(
    path: str | os.PathLike,
    split: str,
    video_id_pattern: str = DEFAULT_VIDEO_ID_PATTERN,
    fields: ReleaseFields = ReleaseFields(),
) -> list[dict]:
    """The rows of :func:`read_release` (without its report)."""
    return read_release(path, split, video_id_pattern, fields)[0]


def read_descriptions(path: str | os.PathLike, fields: ReleaseFields = ReleaseFields()) -> dict[str, str]:
    """video_id -> description (the video-level ``fields.description``, stripped) of the videos
    of a release file that have a non-blank one; the dialogue tables do not carry it."""
    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, dict):
        raise ReleaseError(path, ["top level: has type {}, expected object".format(type(data).__name__)])
    out = {}
    for vid, video in data.items():
        text = video.get(fields.description) if isinstance(video, dict) else None
        if isinstance(text, str) and text.strip():
            out[vid] = text.strip()
    return out


# ---- val carved from train ------------------------------------------------------------------

def _rank(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode("utf-8")).hexdigest()


def carve_val(train_rows: list[dict], carving: ValCarving = ValCarving()) -> tuple[list[dict], list[dict], dict]:
    """(train rows kept, val rows, report): val carved from train (module docstring).

    Raises ValueError when no video qualifies (the release then needs its own val.json).
    """
    groups: dict[tuple[str, tuple[str, ...]], list[dict]] = {}
    for row in train_rows:
        groups.setdefault((row["video_id"], tuple(row["context"])), []).append(row)
    qualifying: dict[str, list[list[dict]]] = {}
    for (vid, _), members in groups.items():
        distinct = dict.fromkeys(r["responses"][0] for r in members)
        if len(distinct) >= carving.min_responses:
            qualifying.setdefault(vid, []).append(members)
    if not qualifying:
        raise ValueError(f"no train video has a dialogue with >= {carving.min_responses} genuine "
                         f"(distinct) responses to one context: val cannot be carved from train; "
                         f"give the release a val.json")
    chosen = sorted(qualifying, key=lambda v: _rank(carving.seed, v))[: carving.videos]
    chosen_set = set(chosen)
    val_rows = []
    for vid in sorted(chosen):
        for members in qualifying[vid]:
            first = members[0]
            refs = list(dict.fromkeys(r["responses"][0] for r in members))[: carving.references]
            k = int(first["dialogue_id"].rsplit("_", 1)[1])
            val_rows.append({"dialogue_id": dialogue_id(vid, k), "video_id": vid, "split": "val",
                             "context": list(first["context"]), "responses": refs})
    val_rows.sort(key=lambda r: (r["video_id"], int(r["dialogue_id"].rsplit("_", 1)[1])))
    kept = [r for r in train_rows if r["video_id"] not in chosen_set]
    report = {"source": "train", **asdict(carving), "eligible_videos": len(qualifying),
              "val_videos": len(chosen), "val_dialogues": len(val_rows),
              "train_videos_removed": len(chosen), "train_dialogues_removed": len(train_rows) - len(kept)}
    return kept, val_rows, report


def release_rows(
    path: str | os.PathLike,
    split: str,
    video_id_pattern: str = DEFAULT_VIDEO_ID_PATTERN,
    fields: ReleaseFields = ReleaseFields(),
    val_from_train: ValCarving | None = None,
) -> tuple[list[dict], dict]:
    """(rows, report) of ``split``; with ``val_from_train`` (the release has no val.json),
    ``path`` is train.json and train/val are its carving (val's videos leave train)."""
    if val_from_train is None:
        return read_release(path, split, video_id_pattern, fields)
    if split == "test":
        raise ValueError("only val can be carved from train; test needs its own test.json")
    train, report = read_release(path, "train", video_id_pattern, fields)
    kept, val, carved = carve_val(train, val_from_train)
    rows = val if split == "val" else kept
    report.update(split=split, n_dialogues=len(rows), n_videos=len({r["video_id"] for r in rows}),
                  val_from_train=carved)
    return rows, report
