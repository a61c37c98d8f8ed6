"""A synthetic TikTalk release at any fraction of the paper's size, for the scale rehearsal
(config/scale.yaml).

At ``fraction=1.0`` the data have the paper's Table 2 counts after the adapter's val carve:
train 35,703 videos / 363,589 dialogues / 816,170 turns, val 1,000 / 1,353 / 3,495, test
2,000 / 2,728 / 7,087 with 5 references, ~16.4 characters an utterance, ~34 s a video. The
release is in the official layout WITHOUT val.json: train.json holds the train videos and the
val videos, whose dialogues come in groups of ``N_REFERENCES`` train dialogues sharing one
context (the genuine responses the adapter carves val from, :func:`tiktalk.data.release.carve_val`).

Beside it, with no video decoded (the media stage is replaced by ``media.precomputed``):

* ``features/{shard}.features.npz`` + ``.status.tsv`` for the manifest the DAG will build (ids
  sorted, ``shard_size`` a shard): ResNet-101 rows (2048-d, 50 frames a video) and VGGish rows
  (128-d, one per 0.96 s, at most 180; ~10% of videos without audio), float16, through the
  pipeline's own shard writer; ~1% of videos failed (zero rows, a reason), as a real run has;
* ``features/{shard}.image.npz`` when ``image_views`` is given: BLIP-2 ViT views (257 x 1408
  tokens a view, float16) for every video;
* ``c3kg.tsv``: ``c3kg_triples`` triples (head, relation, tail, weight), flows and ATOMIC
  relations, about four triples a head.

The values are cheap structured noise: every video has its own offset vector, every frame a
row of a shared random pool, so features differ between videos and frames, standardisation has
something to do, and a release's worth is written at disk speed. Deterministic in ``seed``.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from tiktalk.data.manifest import manifest_from_ids
from tiktalk.formats import N_REFERENCES
from tiktalk.io import atomic_path, write_json
from tiktalk.knowledge.c3kg import ATOMIC_RELATIONS, write_c3kg_table
from tiktalk.formats import FLOW_RELATIONS
from tiktalk.logs import progress
from tiktalk.media.store import write_feature_shard
from tiktalk.media.tables import status_row, write_status
from tiktalk.report.data_division import PAPER_TABLE2

log = logging.getLogger(__name__)

VISUAL_DIM, MAX_FRAMES = 2048, 50           # ResNet-101 pooled, paper: at most 50 frames
AUDIO_DIM, MAX_AUDIO = 128, 180             # VGGish, one per 0.96 s, paper: at most 180
IMAGE_TOKENS, IMAGE_DIM = 257, 1408         # EVA ViT-g/14 at 224 px (BLIP-2)
AUDIO_HOP_S = 0.96
NO_AUDIO_SHARE, FAILED_SHARE = 0.10, 0.01
UTTERANCE_CHARS = (4, 29)                   # uniform: 16.5 characters on average (paper 16.4)
# ~3,500 common CJK code points: every one is a token of the pipeline's Chinese vocabularies
_CJK = np.arange(0x4E00, 0x4E00 + 20902, 6)


@dataclass(frozen=True)
class SplitCounts:
    videos: int
    dialogues: int
    turns: int                 # context turns + one response turn per dialogue (Table 2)
    duration_s: float          # mean video length (Table 2 Avg-v)


def paper_counts(fraction: float) -> dict[str, SplitCounts]:
    """Table 2's rows times ``fraction`` (at least one video and dialogue a split)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    out = {}
    for split, key in (("train", "Train"), ("val", "Val"), ("test", "Test")):
        videos, dialogues, turns, avg_v = PAPER_TABLE2[key][:4]
        v = max(1, round(videos * fraction))
        d = max(v, round(dialogues * fraction))
        t = max(d + d, round(turns * fraction)) if d > 1 else 2 * d
        out[split] = SplitCounts(v, d, min(t, 3 * d), float(avg_v))
    return out


@dataclass(frozen=True)
class ScaleSpec:
    fraction: float
    seed: int = 13
    shard_size: int = 256
    c3kg_triples: int = 1_000_000
    image_views: tuple[str, ...] = ()


class _Text:
    """Random Chinese utterances of the paper's length, drawn from one generator."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def utterances(self, n: int) -> list[str]:
        return self.phrases(n, *UTTERANCE_CHARS)

    def phrases(self, n: int, lo: int = 4, hi: int = 10) -> list[str]:
        """``n`` strings of ``lo`` to ``hi`` characters."""
        lengths = self.rng.integers(lo, hi + 1, n)
        codes = _CJK[self.rng.integers(0, len(_CJK), int(lengths.sum()))]
        chars = "".join(map(chr, codes.tolist()))
        out, at = [], 0
        for n_chars in lengths.tolist():
            out.append(chars[at:at + n_chars])
            at += n_chars
        return out


def _spread(total: int, bins: int, rng: np.random.Generator) -> np.ndarray:
    """``total`` items over ``bins`` bins, each at least one, the rest multinomial."""
    return 1 + rng.multinomial(total - bins, np.full(bins, 1.0 / bins))


def _context_lengths(n: int, extra: int, rng: np.random.Generator) -> np.ndarray:
    """Context turns of ``n`` dialogues: one each, plus one for ``extra`` of them (at most two)."""
    lengths = np.ones(n, np.int64)
    lengths[rng.choice(n, size=min(extra, n), replace=False)] += 1
    return lengths


def video_ids(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` distinct 19-digit Douyin-like ids."""
    ids: set[int] = set()
    while len(ids) < n:
        ids.update((6_900_000_000_000_000_000 + rng.integers(0, 10**17, n - len(ids), dtype=np.int64)).tolist())
    return [str(i) for i in rng.permutation(sorted(ids))]


def _train_videos(ids, counts: SplitCounts, text: _Text, rng) -> dict:
    per_video = _spread(counts.dialogues, counts.videos, rng)
    ctx_len = _context_lengths(counts.dialogues, counts.turns - 2 * counts.dialogues, rng)
    turns = text.utterances(int(ctx_len.sum()) + counts.dialogues)
    out, at, d = {}, 0, 0
    for vid, n in zip(ids, per_video.tolist()):
        dialogues = []
        for _ in range(n):
            k = int(ctx_len[d])
            dialogues.append({"context": turns[at:at + k], "response": turns[at + k]})
            at, d = at + k + 1, d + 1
        out[vid] = {"dialogues": dialogues}
    return out


def _multi_reference(ids, counts: SplitCounts, text: _Text, rng) -> dict[str, list[tuple]]:
    """Per video its dialogues as (context, N_REFERENCES responses): the split's counts, with
    every dialogue's context and responses drawn in one pass."""
    per_video = _spread(counts.dialogues, counts.videos, rng)
    ctx_len = _context_lengths(counts.dialogues, counts.turns - 2 * counts.dialogues, rng)
    turns = text.utterances(int(ctx_len.sum()) + N_REFERENCES * counts.dialogues)
    out, at, g = {}, 0, 0
    for vid, n in zip(ids, per_video.tolist()):
        out[vid] = []
        for _ in range(n):
            k = int(ctx_len[g])
            out[vid].append((turns[at:at + k], turns[at + k:at + k + N_REFERENCES]))
            at, g = at + k + N_REFERENCES, g + 1
    return out


def _val_videos(ids, counts: SplitCounts, text: _Text, rng) -> dict:
    """Val as the adapter carves it: each val dialogue is a context shared by N_REFERENCES
    train dialogues with distinct responses."""
    return {vid: {"dialogues": [{"context": list(context), "response": r}
                                for context, responses in ds for r in responses]}
            for vid, ds in _multi_reference(ids, counts, text, rng).items()}


def _test_videos(ids, counts: SplitCounts, text: _Text, rng) -> dict:
    return {vid: {"dialogues": [{"context": context, "responses": responses} for context, responses in ds]}
            for vid, ds in _multi_reference(ids, counts, text, rng).items()}


def _write_release(path: Path, videos: dict) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        json.dump(dict(sorted(videos.items())), fh, ensure_ascii=False, separators=(",", ":"))


def make_release(out_dir: Path, spec: ScaleSpec) -> dict:
    """Write ``release/train.json`` (train + the val groups) and ``release/test.json``;
    return {video_id: (split, duration_s)} of every video."""
    rng = np.random.default_rng(spec.seed)
    text = _Text(rng)
    counts = paper_counts(spec.fraction)
    ids = video_ids(sum(c.videos for c in counts.values()), rng)
    split_ids = {}
    at = 0
    for split in ("train", "val", "test"):
        split_ids[split] = ids[at:at + counts[split].videos]
        at += counts[split].videos
    train = _train_videos(split_ids["train"], counts["train"], text, rng)
    train.update(_val_videos(split_ids["val"], counts["val"], text, rng))
    test = _test_videos(split_ids["test"], counts["test"], text, rng)
    descriptions = text.phrases(len(ids), 8, 24)
    for vid, desc in zip(ids, descriptions):
        (train.get(vid) or test[vid])["description"] = desc
    _write_release(out_dir / "release" / "train.json", train)
    _write_release(out_dir / "release" / "test.json", test)
    videos = {}
    for split in ("train", "val", "test"):
        mean = counts[split].duration_s            # gamma with shape 4: mostly 10-70 s
        for vid, dur in zip(split_ids[split], rng.gamma(4.0, mean / 4.0, len(split_ids[split])).tolist()):
            videos[vid] = (split, max(3.0, dur))
    return videos


def _pool(rng: np.random.Generator, rows: int, dim: int) -> np.ndarray:
    return rng.standard_normal((rows, dim), dtype=np.float32).astype(np.float16)


def make_feature_shards(out_dir: Path, videos: dict, spec: ScaleSpec) -> dict:
    """The feature (and image) shards and status tables of the manifest the DAG will build."""
    rng = np.random.default_rng(spec.seed + 1)
    feats = out_dir / "features"
    feats.mkdir(parents=True, exist_ok=True)
    frame_pool, audio_pool = _pool(rng, 4096, VISUAL_DIM), _pool(rng, 4096, AUDIO_DIM)
    image_pool = _pool(rng, IMAGE_TOKENS, IMAGE_DIM) if spec.image_views else None
    manifest = manifest_from_ids(videos, {v: s for v, (s, _) in videos.items()}, spec.shard_size)
    shards: dict[str, list[str]] = {}
    for vid, _split, shard in manifest:
        shards.setdefault(shard, []).append(vid)
    stats = {"shards": len(shards), "videos": len(videos), "failed": 0, "no_audio": 0,
             "bytes": 0}
    for shard, ids in progress(shards.items(), total=len(shards), desc="synthetic feature shards"):
        frames, audio, image, status = [], [], [], []
        for vid in ids:
            duration = videos[vid][1]
            if rng.random() < FAILED_SHARE:
                frames.append(np.zeros((0, VISUAL_DIM), np.float16))
                audio.append(np.zeros((0, AUDIO_DIM), np.float16))
                image.append(np.zeros((0, IMAGE_DIM), np.float16))
                status.append(status_row(vid, "decode: synthetic failure (scale rehearsal)"))
                stats["failed"] += 1
                continue
            offset = rng.standard_normal(VISUAL_DIM, dtype=np.float32).astype(np.float16)
            frames.append(frame_pool[rng.integers(0, len(frame_pool), MAX_FRAMES)] + offset)
            n_audio = 0 if rng.random() < NO_AUDIO_SHARE else min(MAX_AUDIO, int(duration / AUDIO_HOP_S))
            stats["no_audio"] += n_audio == 0
            audio.append(audio_pool[rng.integers(0, len(audio_pool), n_audio)]
                         + rng.standard_normal(AUDIO_DIM, dtype=np.float32).astype(np.float16))
            if image_pool is not None:
                shift = int(rng.integers(0, IMAGE_TOKENS))
                views = [np.roll(image_pool, shift + k, axis=0) + np.float16(0.01 * k)
                         for k in range(len(spec.image_views))]
                image.append(np.concatenate(views) + offset[:IMAGE_DIM])
            status.append(status_row(vid, "", n_frames=MAX_FRAMES, n_audio=n_audio, duration=duration,
                                     decoded_s=duration, notes=() if n_audio else ("no audio stream",)))
        provenance = np.array(json.dumps({"random_init": True, "weights": [], "synthetic": True}))
        write_feature_shard(feats / f"{shard}.features.npz", ids, frames, audio, VISUAL_DIM, AUDIO_DIM,
                            {"provenance": provenance})
        if image_pool is not None:
            write_feature_shard(feats / f"{shard}.image.npz", ids, image, None, IMAGE_DIM, 0,
                                {"provenance": provenance, "tokens_per_frame": np.int64(IMAGE_TOKENS),
                                 "encoder": np.array("synthetic EVA ViT-g/14 views (scale rehearsal)"),
                                 "views": np.array(spec.image_views), "view_frames": np.int64(8),
                                 "view_seed": np.int64(spec.seed)})
        write_status(feats / f"{shard}.status.tsv", status)
    stats["bytes"] = sum(p.stat().st_size for p in feats.iterdir())
    return stats


def make_c3kg(out_path: Path, spec: ScaleSpec) -> int:
    """A C3KG table of ``c3kg_triples`` rows, about four a head; 70% of them flows."""
    rng = np.random.default_rng(spec.seed + 2)
    text = _Text(rng)
    n = spec.c3kg_triples
    heads = text.phrases(max(1, n // 4))
    tails = text.phrases(max(1, n // 2))
    flow = rng.random(n) < 0.7
    rel_flow = rng.integers(0, len(FLOW_RELATIONS), n)
    rel_atomic = rng.integers(0, len(ATOMIC_RELATIONS), n)
    head_of = rng.integers(0, len(heads), n)
    tail_of = rng.integers(0, len(tails), n)
    weights = np.round(rng.random(n), 4)
    rows = ((heads[h], FLOW_RELATIONS[rf] if f else ATOMIC_RELATIONS[ra], tails[t], w)
            for h, f, rf, ra, t, w in zip(head_of.tolist(), flow.tolist(), rel_flow.tolist(),
                                          rel_atomic.tolist(), tail_of.tolist(), weights.tolist()))
    return write_c3kg_table(rows, out_path)


def make_scale_rehearsal(out_dir: str | Path, spec: ScaleSpec, weights: bool = True) -> dict:
    """Everything config/scale.yaml reads, under ``out_dir`` (its working directory):
    ``release/``, ``features/``, ``c3kg.tsv`` and (``weights``) the rehearsal's tiny models in
    ``weights/``. Returns a summary, also written to ``out_dir/scale.json``."""
    from tiktalk.rehearsal.weights import build_rehearsal_weights

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    videos = make_release(out, spec)
    summary = {"spec": asdict(spec), "counts": {k: asdict(v) for k, v in paper_counts(spec.fraction).items()}}
    summary["features"] = make_feature_shards(out, videos, spec)
    summary["c3kg_triples"] = make_c3kg(out / "c3kg.tsv", spec)
    if weights:
        built = build_rehearsal_weights(out / "weights", seed=spec.seed)
        summary["weights"] = sorted(built)
    summary["release_bytes"] = sum(p.stat().st_size for p in (out / "release").iterdir())
    write_json(out / "scale.json", summary)
    write_sizes_overlay(out / "sizes.yaml", spec.fraction)
    return summary


def write_sizes_overlay(path: Path, fraction: float) -> None:
    """The config overlay of one fraction: the annotation kits at the paper's sizes (100 test
    dialogues, 300 test videos) or the whole test split where it is smaller."""
    test = paper_counts(fraction)["test"]
    text = (f"# config/scale.yaml at fraction {fraction:g} (written by tiktalk rehearse scale)\n"
            f"human_eval:\n  n_dialogues: {min(100, test.dialogues)}\n"
            f"  context_sources: {{split: test, n_videos: {min(300, test.videos)}, annotators: 3}}\n")
    path.write_text(text, encoding="utf-8")


def shards_needed(fraction: float, shard_size: int = 256) -> int:
    """Shards of the manifest at ``fraction`` (152 at the paper's size)."""
    return math.ceil(sum(c.videos for c in paper_counts(fraction).values()) / shard_size)
