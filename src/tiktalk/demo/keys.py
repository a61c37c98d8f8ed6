"""The answer key of a demo item: the words its response must name, read from a reference.

A visual item's key is the colour of its video's object (``("红色",)``), an audio item's the
pitch of its tone (``("高音",)``), a knowledge item's the emotion its C3KG flow gives
(``("紧张",)``); a text item has no key (its response is fixed by the prompt as a whole).
Every reference of an item names its key (:mod:`tiktalk.demo.texts`), so the key is read from
the first one.

A visual answer also names the shape (圆形 / 方形), but the shape is not part of the key: the
demo's random-init frame features hardly carry it. A linear probe (logistic regression) on
per-video mean features, tested on held-out demo videos, reads the colour at 90-100% and the
shape at 45-80% (chance: 50%), for the ResNet-18 at 112 px and for the BLIP-2 rows' ViT at
32 px. A key that a model cannot learn from its inputs would only add a coin flip to every row.

A response **names the key** when, for each word group of its item type (colours; pitches;
emotions), the group's words it contains are exactly the key's: the right colour and no other
colour. A model that lists every candidate, or hedges between two, does not name the key. This
is the wiring table's ``key_hit`` (:mod:`tiktalk.report.wiring`): unlike BLEU, which the
template shared by all the answers of a type dominates, it moves only with the one fact the
item's modality carries.
"""

from __future__ import annotations

from typing import Sequence

from tiktalk.demo.texts import COLOURS, EMOTIONS, PITCHES

# item type -> its word groups; a key names one word of each group
KEY_GROUPS: dict[str, tuple[tuple[str, ...], ...]] = {
    "visual": (tuple(f"{c}色" for c in COLOURS),),
    "audio": (tuple(PITCHES),),
    "knowledge": (tuple(EMOTIONS),),
    "text": (),
}


def _named(group: tuple[str, ...], text: str) -> set[str]:
    return {w for w in group if w in text}


def answer_key(item_type: str, reference: str, where: str = "reference") -> tuple[str, ...]:
    """The key words of an item of ``item_type`` whose reference is ``reference`` (one word
    per group; ``()`` for a text item). Raises ValueError, naming ``where``, when the
    reference names no word, or several, of a group."""
    try:
        groups = KEY_GROUPS[item_type]
    except KeyError:
        raise ValueError(f"{where}: unknown item type {item_type!r}; known: {sorted(KEY_GROUPS)}") from None
    key = []
    for group in groups:
        found = sorted(_named(group, reference))
        if len(found) != 1:
            raise ValueError(f"{where}: a {item_type} item's reference must name exactly one of "
                             f"{list(group)}, {reference!r} names {found}")
        key.append(found[0])
    return tuple(key)


def names_key(item_type: str, key: tuple[str, ...], response: str) -> bool:
    """Whether ``response`` names exactly the ``key`` words of each group of ``item_type``
    (always False for a text item, which has no key)."""
    groups = KEY_GROUPS[item_type]
    if not groups:
        return False
    return all(_named(group, response) == {word} for group, word in zip(groups, key, strict=True))


def key_hits(item_type: str, ids: Sequence[str], responses: Sequence[str],
             references: Sequence[Sequence[str]]) -> list[bool]:
    """For each item (``ids[i]``, its ``responses[i]`` and its ``references[i]``): whether the
    response names the key read from the item's first reference."""
    return [names_key(item_type, answer_key(item_type, refs[0], where=f"dialogue {i}"), resp)
            for i, resp, refs in zip(ids, responses, references, strict=True)]
