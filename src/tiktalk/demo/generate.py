"""The embedded demo dataset (docs/demo.md), generated deterministically from a seed.

:func:`generate_demo` writes into ``out_dir``::

    videos/<video_id>.mp4       H.264 + AAC (about 15% without an audio stream), 2-6 s, 8 fps
    release/{train,val,test}.json   the release layout of :mod:`tiktalk.data.release` (with a
                                    description per video, :mod:`tiktalk.demo.topics`)
    c3kg.tsv                    mini C3KG as the plain table (formats.C3KG_COLUMNS)
    item_types.json             {dialogue_id: "visual"|"audio"|"knowledge"|"text"} (not release)
    video_attributes.json       {video_id: {split, colour, shape, pitch, has_audio, duration, topic, focus}}

Item types (see :mod:`tiktalk.demo.texts`): a visual item's response names the colour and
shape of its video, an audio item's the pitch of its tone, a knowledge item's the emotion that
the C3KG emotion flow ``(event, emotion_cause, emotion)`` gives for the event its context
mentions, and a text item's response is fixed by its context. Video attributes are
independent of the dialogue text and balanced over the items that ask for them (colour and
shape over the visual items, pitch over the audio items), so a model that always gives the
same answer scores chance. Knowledge items of val/test use events ("held-out heads")
that no training dialogue mentions, and the emotions are assigned to the (neutral) events at
random, so only a model that reads the retrieved flow can answer them; the training knowledge
items teach the skill with the other events. Every split has the item types in the shares of
``texts.ITEM_SHARES`` (the paper's Fig. 2) unless ``item_shares`` names it (the default config
gives train more audio items and balances the test split); audio items only sit on videos
with an audio stream.

Sub-generators are seeded per purpose and per split, so e.g. changing the number of training
videos leaves the val/test dialogues and their videos unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path
from typing import Mapping

from tiktalk.data.release import dialogue_id
from tiktalk.demo import texts as T
from tiktalk.demo.media import FOCUS_SEGMENTS, VideoSpec, write_demo_video
from tiktalk.demo.topics import description as describe, draw_topic
from tiktalk.formats import C3KG_COLUMNS, N_REFERENCES, SPLITS
from tiktalk.io import write_json, write_text_atomic

DEFAULT_N_VIDEOS = {"train": 96, "val": 16, "test": 24}
DEFAULT_DIALOGUES_PER_VIDEO = {"train": 6, "val": 2, "test": 2}
# id ranges of recent Douyin item ids: 19 decimal digits
_ID_LO, _ID_HI = 6_900_000_000_000_000_000, 7_399_999_999_999_999_999
_ID_ORDER = ("test", "val", "train")   # train last: its size does not move val/test ids


def _rng(seed: int, *purpose: str) -> random.Random:
    # str seeds are hashed with SHA-512 by random.Random: stable across runs and platforms
    return random.Random(":".join([str(seed), *purpose]))


def _video_ids(seed: int, n_videos: Mapping[str, int]) -> dict[str, list[str]]:
    rng = _rng(seed, "video_ids")
    seen: set[str] = set()
    out: dict[str, list[str]] = {}
    for split in _ID_ORDER:
        ids = []
        while len(ids) < n_videos[split]:
            vid = str(rng.randint(_ID_LO, _ID_HI))
            if vid not in seen:
                seen.add(vid)
                ids.append(vid)
        out[split] = ids
    return out


def _silent(seed: int, split: str, n: int, no_audio_fraction: float) -> list[bool]:
    """Which of the split's ``n`` videos have no audio stream (round(fraction * n) of them)."""
    rng = _rng(seed, "silent", split)
    silent = set(rng.sample(range(n), int(round(no_audio_fraction * n))))
    return [i in silent for i in range(n)]


def _balanced(rng: random.Random, values, weights: list[int], eligible: list[bool]) -> list:
    """One of ``values`` per video, balanced over the items that ask for it: videos in
    decreasing ``weights`` (their number of such items; ties in random order) each take the
    value with the fewest items so far, then the fewest videos, then a random one. None where
    not ``eligible``. Item counts then differ by at most the largest weight."""
    order = [i for i in range(len(weights)) if eligible[i]]
    rng.shuffle(order)
    order.sort(key=lambda i: -weights[i])
    items = {v: 0 for v in values}
    videos = {v: 0 for v in values}
    out: list = [None] * len(weights)
    for i in order:
        tiebreak = list(values)
        rng.shuffle(tiebreak)
        v = min(tiebreak, key=lambda x: (items[x], videos[x]))
        out[i] = v
        items[v] += weights[i]
        videos[v] += 1
    return out


def _video_specs(seed: int, split: str, ids: list[str], types: list[list[str]], silent: list[bool],
                 size: int, min_duration: float, max_duration: float) -> list[VideoSpec]:
    """The split's videos. Colour and shape are balanced over the visual items (and the
    videos), pitch over the audio items (and the videos with sound), so that no answer is
    more frequent than another and a model that does not see or hear the video cannot beat
    chance by always giving the same one; the rest is drawn at random."""
    rng = _rng(seed, "videos", split)
    visual = [t.count("visual") for t in types]
    audio = [t.count("audio") for t in types]
    everyone = [True] * len(ids)
    colours = _balanced(rng, tuple(T.COLOURS), visual, everyone)
    shapes = _balanced(rng, T.SHAPES, visual, everyone)
    pitches = _balanced(rng, tuple(T.PITCHES), audio, [not s for s in silent])
    durations = [min_duration + 0.5 * k for k in range(int((max_duration - min_duration) / 0.5) + 1)]
    specs = []
    for i, vid in enumerate(ids):
        speed = size / 32.0
        specs.append(VideoSpec(
            video_id=vid,
            colour=colours[i],
            shape=shapes[i],
            pitch=pitches[i],
            duration=rng.choice(durations),
            background=rng.randint(50, 110),
            radius=rng.randint(max(3, size // 9), max(4, size // 7)),
            x0=rng.random(),
            y0=rng.random(),
            vx=rng.choice((-1, 1)) * rng.uniform(0.5 * speed, 1.2 * speed),
            vy=rng.choice((-1, 1)) * rng.uniform(0.3 * speed, 1.0 * speed),
        ))
    return specs


def _knowledge(seed: int, n_heldout: int) -> tuple[dict[str, str], list[str], list[str], list[tuple]]:
    """Event -> emotion, the training heads, the held-out heads, and the mini C3KG rows."""
    rng = _rng(seed, "c3kg")
    events = list(T.EVENTS)
    rng.shuffle(events)
    if not 0 < n_heldout < len(events) - len(T.EMOTIONS):
        raise ValueError(f"n_heldout_heads must be in 1..{len(events) - len(T.EMOTIONS) - 1}")
    heldout, train = events[:n_heldout], events[n_heldout:]
    emotion: dict[str, str] = {}
    for group in (heldout, train):           # balanced emotions inside each group
        labels = [T.EMOTIONS[i % len(T.EMOTIONS)] for i in range(len(group))]
        rng.shuffle(labels)
        emotion.update(zip(group, labels))

    def w() -> str:
        return f"{rng.uniform(0.5, 1.0):.3f}"

    rows: list[tuple[str, str, str, str]] = []
    for ev in sorted(events):
        rows.append((ev, "emotion_cause", emotion[ev], w()))
        rows.append((ev, "next_utterance", rng.choice(T.NEXT_UTTERANCES), w()))
        rows.append((ev, "next_sentence", rng.choice(T.NEXT_SENTENCES), w()))
        rows.append((ev, "xReact", rng.choice(T.XREACTS), w()))
        rows.append((ev, "xWant", rng.choice(T.XWANTS), w()))
        if rng.random() < 0.5:
            rows.append((ev, "xIntent", rng.choice(T.XINTENTS), w()))
    for emo in T.EMOTIONS:
        rows.append((emo, "emotion_intent", T.EMOTION_INTENTS[emo], w()))
    for head, tail in T.CONCEPT_FLOWS:
        rows.append((head, "next_entity", tail, w()))
    return emotion, train, heldout, rows


def check_shares(shares: Mapping[str, float], where: str = "item shares") -> dict[str, float]:
    """``shares`` as a dict over exactly T.ITEM_TYPES, each > 0, summing to 1 (to 1e-6)."""
    got = set(shares)
    if got != set(T.ITEM_TYPES):
        raise ValueError(f"{where}: need exactly the item types {list(T.ITEM_TYPES)}, got "
                         f"{sorted(got)}")
    bad = {t: v for t, v in shares.items() if not float(v) > 0}
    if bad:
        raise ValueError(f"{where}: every share must be > 0, got {bad}")
    total = sum(float(v) for v in shares.values())
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"{where}: shares sum to {total:g}, not 1")
    return {t: float(shares[t]) for t in T.ITEM_TYPES}


def type_counts(n: int, shares: Mapping[str, float] | None = None) -> dict[str, int]:
    """How many of ``n`` dialogues get each item type: ``shares`` (default T.ITEM_SHARES)
    rounded by largest remainder (ties in T.ITEM_TYPES order), every type at least once."""
    shares = check_shares(T.ITEM_SHARES if shares is None else shares)
    if n < len(T.ITEM_TYPES):
        raise ValueError(f"{n} dialogues in a split: need at least {len(T.ITEM_TYPES)}, one per item type")
    exact = {t: shares[t] * n for t in T.ITEM_TYPES}
    counts = {t: max(1, int(x)) for t, x in exact.items()}
    by_remainder = sorted(T.ITEM_TYPES, key=lambda t: (counts[t] - exact[t], T.ITEM_TYPES.index(t)))
    i = 0
    while sum(counts.values()) < n:
        counts[by_remainder[i % len(by_remainder)]] += 1
        i += 1
    while sum(counts.values()) > n:  # the max(1, ...) floor overshot: take from the largest
        counts[max(counts, key=counts.get)] -= 1
    return counts


def _assign_types(rng: random.Random, silent: list[bool], per_video: int,
                  shares: Mapping[str, float]) -> list[list[str]]:
    """Item types of each video's dialogues in the split's ``shares``; audio only with audio."""
    slots = [(v, k) for v in range(len(silent)) for k in range(per_video)]
    types = [t for t, n in type_counts(len(slots), shares).items() for _ in range(n)]
    rng.shuffle(types)
    donors = [j for j, (v, _) in enumerate(slots) if not silent[v]]
    rng.shuffle(donors)
    for i, (v, _) in enumerate(slots):
        if types[i] == "audio" and silent[v]:
            j = next((j for j in donors if types[j] != "audio"), None)
            if j is None:
                raise ValueError("too few videos with audio to place the audio items")
            types[i], types[j] = types[j], types[i]
    out = [[""] * per_video for _ in silent]
    for (v, k), t in zip(slots, types):
        out[v][k] = t
    return out


def _references(rng: random.Random, canonical: str, pool: list[str], fill: dict) -> list[str]:
    others = [p for p in pool if p != canonical]
    chosen = rng.sample(others, N_REFERENCES - 1)
    return [canonical.format(**fill)] + [p.format(**fill) for p in chosen]


class _Cycle:
    """Deterministic round-robin over a shuffled copy of ``items`` (even coverage)."""

    def __init__(self, rng: random.Random, items):
        self._rng, self._items, self._queue = rng, list(items), []

    def next(self):
        if not self._queue:
            self._queue = list(self._items)
            self._rng.shuffle(self._queue)
        return self._queue.pop()


def _dialogues(seed: int, split: str, specs: list[VideoSpec], types: list[list[str]],
               heads: list[str], emotion: dict[str, str]) -> tuple[dict, dict]:
    rng = _rng(seed, "dialogues", split)
    visual_pool = [c for _, c in T.VISUAL_QA] + list(T.VISUAL_PARAPHRASES)
    audio_pool = [c for _, c in T.AUDIO_QA] + list(T.AUDIO_PARAPHRASES)
    knowledge_pool = [T.KNOWLEDGE_CANONICAL] + list(T.KNOWLEDGE_PARAPHRASES)
    # knowledge items rotate over the emotions (balanced answers), then over their heads
    by_emotion: dict[str, list[str]] = {}
    for head in heads:
        by_emotion.setdefault(emotion[head], []).append(head)
    cyc_emotion = _Cycle(rng, sorted(by_emotion))
    cyc_heads = {emo: _Cycle(rng, hs) for emo, hs in sorted(by_emotion.items())}
    cyc_text = _Cycle(rng, range(len(T.TEXT_ITEMS)))
    release: dict[str, dict] = {}
    item_types: dict[str, str] = {}
    for v, spec in enumerate(specs):
        dialogues = []
        for k, kind in enumerate(types[v]):
            if kind == "visual":
                question, canonical = rng.choice(T.VISUAL_QA)
                refs = _references(rng, canonical, visual_pool, {"c": spec.colour, "s": spec.shape})
            elif kind == "audio":
                question, canonical = rng.choice(T.AUDIO_QA)
                refs = _references(rng, canonical, audio_pool, {"p": spec.pitch})
            elif kind == "knowledge":
                head = cyc_heads[cyc_emotion.next()].next()
                question = rng.choice(T.KNOWLEDGE_CONTEXTS).format(t=rng.choice(T.TIMES), e=head)
                refs = _references(rng, T.KNOWLEDGE_CANONICAL, knowledge_pool, {"m": emotion[head]})
            else:
                question, answers = T.TEXT_ITEMS[cyc_text.next()]
                refs = list(answers)
            n_context = rng.choices((1, 2, 3), weights=(0.4, 0.35, 0.25))[0]
            context = rng.sample(T.FILLERS, n_context - 1) + [question]
            if split == "train":
                dialogues.append({"context": context, "response": refs[0]})
            else:
                dialogues.append({"context": context, "responses": refs})
            item_types[dialogue_id(spec.video_id, k)] = kind
        release[spec.video_id] = {"dialogues": dialogues}
    return release, item_types


def generate_demo(
    out_dir: str | Path,
    seed: int = 0,
    n_videos: Mapping[str, int] | None = None,
    dialogues_per_video: Mapping[str, int] | None = None,
    item_shares: Mapping[str, Mapping[str, float]] | None = None,
    *,
    size: int = 96,
    fps: int = 8,
    sample_rate: int = 16000,
    no_audio_fraction: float = 0.15,
    min_duration: float = 2.0,
    max_duration: float = 6.0,
    n_heldout_heads: int = 16,
    write_videos: bool = True,
) -> dict:
    """Write the demo dataset into ``out_dir`` (layout in the module doc); return a summary.

    ``n_videos`` / ``dialogues_per_video`` map each split to a count (defaults
    :data:`DEFAULT_N_VIDEOS`, :data:`DEFAULT_DIALOGUES_PER_VIDEO`; missing splits take the
    default). ``item_shares`` maps a split to its item-type shares (``{visual, audio,
    knowledge, text}``, summing to 1); a split not named keeps T.ITEM_SHARES, the paper's
    Fig. 2 shares. ``write_videos=False`` skips the MP4 files (text-only tests).
    """
    out_dir = Path(out_dir)
    n_videos = {**DEFAULT_N_VIDEOS, **(n_videos or {})}
    per_video = {**DEFAULT_DIALOGUES_PER_VIDEO, **(dialogues_per_video or {})}
    for split in SPLITS:
        if n_videos[split] < 1 or per_video[split] < 1:
            raise ValueError(f"split {split!r} needs >= 1 video and >= 1 dialogue per video")
    unknown = set(item_shares or {}) - set(SPLITS)
    if unknown:
        raise ValueError(f"item_shares: unknown split(s) {sorted(unknown)}; splits are {list(SPLITS)}")
    shares = {split: check_shares((item_shares or {}).get(split, T.ITEM_SHARES),
                                  f"item_shares.{split}") for split in SPLITS}
    if size % 2 or size < 16:
        raise ValueError(f"size must be even and >= 16, got {size}")
    if not 2.0 <= min_duration <= max_duration:
        raise ValueError("need 2.0 <= min_duration <= max_duration")

    emotion, train_heads, heldout_heads, c3kg_rows = _knowledge(seed, n_heldout_heads)
    ids = _video_ids(seed, n_videos)
    summary: dict = {"seed": seed, "n_videos": {}, "n_dialogues": {}, "n_without_audio": {},
                     "item_shares": shares, "item_types": {}, "n_c3kg_rows": len(c3kg_rows),
                     "train_heads": len(train_heads), "heldout_heads": len(heldout_heads)}
    all_types: dict[str, str] = {}
    attributes: dict[str, dict] = {}
    for split in SPLITS:
        silent = _silent(seed, split, len(ids[split]), no_audio_fraction)
        types = _assign_types(_rng(seed, "types", split), silent, per_video[split], shares[split])
        specs = _video_specs(seed, split, ids[split], types, silent, size, min_duration, max_duration)
        focus_rng = _rng(seed, "focus", split)    # Table 6: where each video's shape is largest
        specs = [dataclasses.replace(spec, focus=focus_rng.randrange(FOCUS_SEGMENTS)) for spec in specs]
        heads = train_heads if split == "train" else heldout_heads
        release, item_types = _dialogues(seed, split, specs, types, heads, emotion)
        topic_rng = _rng(seed, "topics", split)   # Table 5: a topic and a description per video
        topics = {spec.video_id: draw_topic(topic_rng) for spec in specs}
        for spec in specs:
            release[spec.video_id]["description"] = describe(topic_rng, topics[spec.video_id],
                                                             spec.colour, spec.shape)
        write_json(out_dir / "release" / f"{split}.json", release)
        all_types.update(item_types)
        for spec in specs:
            attributes[spec.video_id] = {
                "split": split, "colour": spec.colour, "shape": spec.shape, "pitch": spec.pitch,
                "has_audio": spec.has_audio, "duration": spec.duration,
                "topic": topics[spec.video_id], "focus": spec.focus,
            }
            if write_videos:
                write_demo_video(out_dir / "videos" / f"{spec.video_id}.mp4", spec, size, fps,
                                 sample_rate)
        counts = {t: 0 for t in T.ITEM_TYPES}
        for t in item_types.values():
            counts[t] += 1
        summary["n_videos"][split] = len(specs)
        summary["n_dialogues"][split] = len(item_types)
        summary["n_without_audio"][split] = sum(not s.has_audio for s in specs)
        summary["item_types"][split] = counts

    lines = ["\t".join(C3KG_COLUMNS)] + ["\t".join(row) for row in c3kg_rows]
    write_text_atomic(out_dir / "c3kg.tsv", "\n".join(lines) + "\n")
    write_json(out_dir / "item_types.json", all_types)
    write_json(out_dir / "video_attributes.json", attributes)
    return summary


if __name__ == "__main__":  # pragma: no cover - convenience for a quick look
    import sys
    import time

    t0 = time.perf_counter()
    result = generate_demo(Path(sys.argv[1]), seed=int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    result["seconds"] = round(time.perf_counter() - t0, 2)
    print(json.dumps(result, ensure_ascii=False, indent=2))
