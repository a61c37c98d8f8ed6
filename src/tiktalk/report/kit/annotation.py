"""The annotation kit shared by the human evaluation (Table 4) and the context-source labelling
(Figure 2(b)/(c)): items, blinded per-annotator sheets, the key, and reading filled sheets back.

Files
-----
Sheet (``{annotator}.csv``, UTF-8 with BOM so that spreadsheet programs show Chinese text,
and the same rows as ``{annotator}.xlsx``, every text cell stored as text)
    One row per candidate response of an item, columns :data:`BASE_COLUMNS`, the task's
    rating fields (empty until rated), then ``check``::

        annotator, item, video, level, slot, context, response, <field>, ..., check

    ``item`` is ``i001``, ``i002``, ... (one sampled dialogue); ``slot`` is ``A``, ``B``, ...
    (one candidate); ``context`` holds the dialogue's turns, one per line, numbered; ``level``
    is the response's level in its comment thread (a response after k context turns is
    Level-(k+1)). Nothing in a sheet names the system behind a slot. Row numbers in error
    messages count as a spreadsheet does: the header is row 1.

Matching a filled sheet to the key
    A row is the candidate (``annotator``, ``item``, ``slot``): short ids that no spreadsheet
    program rewrites. ``check`` (:func:`row_check`, eight lower-case letters, which no
    spreadsheet turns into a number or a date) is a digest of what the row showed (annotator,
    item, slot, video, level, context, response): the scorer recomputes it from the key, so a
    sheet made from other dialogues, predictions or seed is still caught, while the display
    columns may come back changed (Excel turns a 19-digit video id into ``6.99883E+18`` and a
    response ``1/2`` into a date) without harm. A sheet without the ``check`` column (written
    before it existed) is matched as it always was: video, level, context and response must
    equal the key's.
Key (``key.json``, kept apart from the sheets)
    ``{"version", "task", "split", "seed", "settings", "fields", "annotators",
    "items": [{"item", "dialogue_id", "video_id", "level", "context", "candidates":
    {system: response}}], "slots": {annotator: {item: {slot: system}}}}``.

Candidate order
---------------
With ``shuffle=True`` (human evaluation) each annotator sees an item's candidates in an order
of their own, drawn from ``Random(f"{seed}/{annotator}/{item}")``. Per annotator rather than
shared, because a shared order would show each system at the same position to every
annotator: position effects (anchoring on the first candidate, fatigue at the last) would then
add to the system differences and inflate the agreement (kappa). Independent orders turn them
into noise that averages out.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from tiktalk.io import read_json, write_json, write_text_atomic
from tiktalk.report.kit import sheet_io

log = logging.getLogger(__name__)

KEY_VERSION = 1
BASE_COLUMNS = ("annotator", "item", "video", "level", "slot", "context", "response")
ID_COLUMNS = ("annotator", "item", "slot")
CHECK = "check"
CHECK_LETTERS = 8
SLOT_NAMES = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
MAX_ERRORS = 40
_SCIENTIFIC = re.compile(r"[0-9](?:[.,][0-9]+)?[eE]\+?[0-9]+")


class SheetError(ValueError):
    """Filled sheets that cannot be scored; the message lists every problem with file and row."""


@dataclass(frozen=True)
class Item:
    """One annotation item: a dialogue context and its candidate responses.

    ``candidates`` maps a hidden identity (a system name, or ``ref1``.. for the references)
    to the response shown; its order is the canonical (unshuffled) order.
    """

    item: str
    dialogue_id: str
    video_id: str
    context: tuple[str, ...]
    candidates: tuple[tuple[str, str], ...]

    @property
    def level(self) -> int:
        return len(self.context) + 1


@dataclass(frozen=True)
class Rating:
    """One filled sheet row, resolved through the key."""

    annotator: str
    item: str
    slot: str
    system: str
    values: dict
    file: str
    row: int


def item_names(n: int) -> list[str]:
    width = max(3, len(str(n)))
    return [f"i{k:0{width}d}" for k in range(1, n + 1)]


def annotator_names(annotators: int | Sequence[str]) -> list[str]:
    """``annotator_1`` .. ``annotator_n`` for a count ``n``, else the names given."""
    if not isinstance(annotators, int):
        return [str(a) for a in annotators]
    if annotators < 1:
        raise ValueError(f"need at least one annotator, got {annotators}")
    return [f"annotator_{k}" for k in range(1, annotators + 1)]


def format_context(turns: Sequence[str]) -> str:
    return "\n".join(f"{k}. {t}" for k, t in enumerate(turns, 1))


def _norm(text: str) -> str:
    return str(text).replace("\r\n", "\n").replace("\r", "\n").strip()


def sheet_columns(fields: Sequence[str]) -> tuple[str, ...]:
    """A sheet's columns: :data:`BASE_COLUMNS`, the rating ``fields``, then ``check``."""
    return BASE_COLUMNS + tuple(fields) + (CHECK,)


def row_check(annotator: str, item: str, slot: str, video: str, level, context: str,
              response: str) -> str:
    """The ``check`` cell of a sheet row: eight letters ``a``-``z`` from the SHA-256 of what
    the row shows (texts compared as the scorer compares them: stripped, newlines unified).
    Letters only, so no spreadsheet program reads the cell as a number, date or formula."""
    text = "\x1f".join(_norm(v) for v in (annotator, item, slot, video, str(level), context, response))
    n = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")
    letters = []
    for _ in range(CHECK_LETTERS):
        n, r = divmod(n, 26)
        letters.append(chr(ord("a") + r))
    return "".join(letters)


def slot_orders(items: Sequence[Item], annotators: Sequence[str], seed: int,
                shuffle: bool) -> dict[str, dict[str, dict[str, str]]]:
    """``{annotator: {item: {slot: system}}}`` (see the module doc for the order)."""
    out: dict[str, dict[str, dict[str, str]]] = {}
    for annotator in annotators:
        per_item = {}
        for it in items:
            systems = [s for s, _ in it.candidates]
            if len(systems) > len(SLOT_NAMES):
                raise ValueError(f"item {it.item}: {len(systems)} candidates, at most "
                                 f"{len(SLOT_NAMES)} fit the slots A..Z")
            if shuffle:
                random.Random(f"{seed}/{annotator}/{it.item}").shuffle(systems)
            per_item[it.item] = dict(zip(SLOT_NAMES, systems))
        out[annotator] = per_item
    return out


def sheet_rows(items: Sequence[Item], annotator: str, slots: Mapping[str, Mapping[str, str]],
               fields: Sequence[str]) -> list[dict[str, str]]:
    """The rows of one annotator's blank sheet."""
    rows = []
    for it in items:
        responses = dict(it.candidates)
        context = format_context(it.context)
        for slot, system in slots[it.item].items():
            rows.append({"annotator": annotator, "item": it.item, "video": it.video_id,
                         "level": str(it.level), "slot": slot, "context": context,
                         "response": responses[system], **{f: "" for f in fields},
                         CHECK: row_check(annotator, it.item, slot, it.video_id, it.level,
                                          context, responses[system])})
    return rows


def sheet_csv(rows: Iterable[Mapping[str, str]], columns: Sequence[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\r\n",
                            quoting=csv.QUOTE_ALL)
    writer.writeheader()
    writer.writerows(rows)
    return "\ufeff" + buf.getvalue()


def write_sheets(items: Sequence[Item], annotators: Sequence[str], fields: Sequence[str], *,
                 task: str, split: str, seed: int, settings: Mapping, shuffle: bool,
                 sheets_dir: str | os.PathLike, key_path: str | os.PathLike,
                 whole_range: tuple[int, int] | None = None) -> dict:
    """Write ``{sheets_dir}/{annotator}.csv`` and ``.xlsx`` for every annotator and the key;
    return the key. ``whole_range`` (low, high): the .xlsx accepts only whole numbers in that
    range in the rating fields."""
    if not items:
        raise ValueError("no items to annotate")
    if len(set(annotators)) != len(annotators):
        raise ValueError(f"annotator names are not distinct: {list(annotators)}")
    slots = slot_orders(items, annotators, seed, shuffle)
    columns = sheet_columns(fields)
    for annotator in annotators:
        rows = sheet_rows(items, annotator, slots[annotator], fields)
        write_text_atomic(Path(sheets_dir) / f"{annotator}.csv", sheet_csv(rows, columns))
        sheet_io.write_xlsx(Path(sheets_dir) / f"{annotator}.xlsx", columns, rows,
                            number_columns=fields, whole_range=whole_range, title="ratings")
    key = {
        "version": KEY_VERSION, "task": task, "split": split, "seed": int(seed),
        "settings": dict(settings), "fields": list(fields), "annotators": list(annotators),
        "items": [{"item": it.item, "dialogue_id": it.dialogue_id, "video_id": it.video_id,
                   "level": it.level, "context": list(it.context),
                   "candidates": dict(it.candidates)} for it in items],
        "slots": slots,
    }
    write_json(key_path, key)
    return key


def read_key(path: str | os.PathLike, task: str) -> dict:
    """Read a key and check its version and task."""
    key = read_json(path)
    if not isinstance(key, dict) or key.get("version") != KEY_VERSION:
        raise ValueError(f"{path}: not a version-{KEY_VERSION} annotation key")
    if key.get("task") != task:
        raise ValueError(f"{path}: a key of task {key.get('task')!r}, expected {task!r}")
    for name in ("items", "slots", "annotators", "fields", "settings"):
        if name not in key:
            raise ValueError(f"{path}: key lacks {name!r}")
    return key


def read_scores(path: str | os.PathLike, task: str, version: int) -> dict:
    """Read a task's scores file (written by its ``score``) and check its version and task."""
    scores = read_json(path)
    if not isinstance(scores, dict) or scores.get("version") != version or scores.get("task") != task:
        raise ValueError(f"{path}: not a version-{version} {task} scores file")
    return scores


def items_of_key(key: Mapping) -> list[Item]:
    """The key's items, candidates in canonical order."""
    return [Item(it["item"], it["dialogue_id"], it["video_id"], tuple(it["context"]),
                 tuple(it["candidates"].items())) for it in key["items"]]


def read_sheet(path: str | os.PathLike) -> tuple[list[str], list[dict[str, str]]]:
    """(header, rows) of a sheet (.csv or .xlsx, :func:`tiktalk.report.kit.sheet_io.read_table`)."""
    try:
        return sheet_io.read_table(path)
    except sheet_io.TableError as exc:
        raise SheetError(str(exc)) from None


def filled_sheet_paths(ratings_dir: str | os.PathLike) -> tuple[list[Path], dict[str, str]]:
    """(the sheets of a ratings folder: ``*.csv``, ``*.xlsx`` in any case; ``{skipped file:
    why}``). The skipped files are named in a warning; no sheet at all is an error naming them."""
    files, skipped = sheet_io.sheet_files(ratings_dir)
    if skipped:
        log.warning("%s: skipped %d file(s): %s", ratings_dir, len(skipped),
                    sheet_io.describe_skipped(skipped))
    if not files:
        more = f"; skipped: {sheet_io.describe_skipped(skipped)}" if skipped else ""
        raise SheetError(f"{ratings_dir}: no filled sheets (*.csv, *.xlsx){more}")
    return files, skipped


FieldParser = Callable[[Mapping[str, str]], tuple[dict, list[str]]]


def read_filled_sheets(ratings_dir: str | os.PathLike, key: Mapping,
                       parse_fields: FieldParser) -> list[Rating]:
    """Every rating in the sheets of ``ratings_dir`` (:func:`filled_sheet_paths`), checked
    against the key.

    ``parse_fields(row)`` turns a row's rating cells into values and lists its problems. Raises
    :class:`SheetError` listing each problem with file and row: a missing column, a missing or
    bad rating (from ``parse_fields``), an unknown annotator or item, a row whose ``check``
    (or, in a sheet without that column, video, level, context or response) does not match
    the key, an annotator who rated the same candidate twice, and candidates of the key that
    an annotator did not rate. The message also names the files of the folder that were
    skipped.
    """
    ratings_dir = Path(ratings_dir)
    files, skipped = filled_sheet_paths(ratings_dir)
    items = {it["item"]: it for it in key["items"]}
    slots = key["slots"]
    fields = tuple(key["fields"])
    problems: list[str] = []
    ratings: list[Rating] = []
    seen: dict[tuple[str, str, str], str] = {}
    files_of: dict[str, set[str]] = {}
    for path in files:
        header, rows = read_sheet(path)
        # with ``check``, the display columns may be dropped; without it they are compared
        required = (ID_COLUMNS + fields) if CHECK in header else (BASE_COLUMNS + fields)
        missing = [c for c in required if c not in header]
        if missing:
            problems.append(f"{path}: row 1 (header): missing column(s) {missing}")
            continue
        for number, row in enumerate(rows, 2):
            if not row:
                continue
            where = f"{path}: row {number}"
            annotator, item, slot = (row["annotator"].strip(), row["item"].strip(),
                                     row["slot"].strip())
            where += f" (annotator {annotator!r}, item {item!r}, slot {slot!r})"
            if annotator not in slots:
                problems.append(f"{where}: unknown annotator (key: {key['annotators']})")
                continue
            if item not in items:
                problems.append(f"{where}: unknown item; the key has items "
                                f"{next(iter(items))}..{next(reversed(items))}")
                continue
            files_of.setdefault(annotator, set()).add(str(path))
            system = slots[annotator][item].get(slot)
            if system is None:
                problems.append(f"{where}: the key has no slot {slot!r} for this annotator's item "
                                f"(slots {sorted(slots[annotator][item])}): the sheet's candidates "
                                "do not match the key")
                continue
            mismatch = _key_mismatch(row, annotator, slot, items[item], system, CHECK in header)
            if mismatch:
                problems.append(f"{where}: {mismatch}")
                continue
            first = seen.get((annotator, item, slot))
            if first is not None:
                problems.append(f"{where}: annotator {annotator!r} rated this candidate twice "
                                f"(first at {first})")
                continue
            seen[(annotator, item, slot)] = f"{path}: row {number}"
            values, bad = parse_fields(row)
            if bad:
                problems.extend(f"{where}: {b}" for b in bad)
                continue
            ratings.append(Rating(annotator, item, slot, system, values, str(path), number))
    if not problems:
        for annotator in key["annotators"]:
            expected = [(it, s) for it, per in slots[annotator].items() for s in per]
            absent = [(it, s) for it, s in expected if (annotator, it, s) not in seen]
            if not absent:
                continue
            if annotator not in files_of:
                problems.append(f"{ratings_dir}: no sheet rows for annotator {annotator!r} "
                                f"(expected {len(expected)} candidates)")
                continue
            where = ", ".join(sorted(files_of[annotator]))
            shown = ", ".join(f"{it}/{s}" for it, s in absent[:8])
            more = f" and {len(absent) - 8} more" if len(absent) > 8 else ""
            problems.append(f"{where}: annotator {annotator!r} has no row for {len(absent)} of "
                            f"{len(expected)} candidates ({shown}{more})")
    if problems:
        shown = problems[:MAX_ERRORS]
        more = f"\n  ... and {len(problems) - MAX_ERRORS} more" if len(problems) > MAX_ERRORS else ""
        if skipped:
            more += f"\n  (files skipped, not read: {sheet_io.describe_skipped(skipped)})"
        raise SheetError(f"{len(problems)} problem(s) in the filled sheets under {ratings_dir}:\n  "
                         + "\n  ".join(shown) + more)
    return ratings


def _key_mismatch(row: Mapping[str, str], annotator: str, slot: str, entry: Mapping, system: str,
                  has_check: bool) -> str | None:
    """Why a sheet row does not belong to the key's candidate, or None (see the module doc)."""
    why = "the sheet was made from other dialogues, predictions or seed than this key"
    context, response = format_context(entry["context"]), entry["candidates"][system]
    if has_check:
        want = row_check(annotator, entry["item"], slot, entry["video_id"], entry["level"],
                         context, response)
        got = row[CHECK].strip()
        if got == want:
            return None
        if not got:
            return f"the {CHECK!r} cell is empty (it ties the row to the key: keep it as written)"
        return f"{CHECK} {got!r} does not match the key: {why}"
    mismatch = [name for name, got, want in (
        ("video", row["video"], entry["video_id"]),
        ("level", row["level"], str(entry["level"])),
        ("context", row["context"], context),
        ("response", row["response"], response),
    ) if _norm(got) != _norm(want)]
    if not mismatch:
        return None
    if "video" in mismatch and _SCIENTIFIC.fullmatch(row["video"].strip()):
        why = (f"the video id was turned into the number {row['video'].strip()} by a spreadsheet "
               f"program; score the .xlsx sheet, or a sheet that kept its {CHECK!r} column")
    return f"{', '.join(mismatch)} differ(s) from the key: {why}"
