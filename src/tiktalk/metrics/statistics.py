"""Per-dialogue sufficient statistics of the automatic metrics, and the corpus scores from them.

Every corpus score of :mod:`tiktalk.metrics.evaluate` is a function of per-dialogue
quantities, so the score of any multiset of the dialogues (a bootstrap resample) follows from
them without running a scorer again. Per reference slot (per-reference protocol; one slot with
every reference under all-references) and dialogue:

BLEU-1..4 (``bleu``, int, 10 numbers)
    hypothesis length, the reference length nlg-eval's ``'closest'`` option picks for it,
    hypothesis n-grams (guess) and clipped matching n-grams (correct) for n = 1..4: what
    pycocoevalcap's ``BleuScorer`` sums over the corpus before its geometric mean and brevity
    penalty (:func:`bleu_from_totals`, the same float operations in the same order).
METEOR (``meteor``, 23 numbers)
    the METEOR 1.5 jar's own statistics of the segment
    (:meth:`tiktalk.metrics.scorers.MeteorProcess.segment_stats`). The jar's corpus score is
    its ``computeMetrics`` on the SUM of the segments' statistics, the fragmentation penalty
    included, with one rule: a segment that matches completely in one chunk adds no chunks
    (``MeteorStats.addStats``). :func:`meteor_from_totals` is ``computeMetrics`` (METEOR 1.5,
    ``-l en``, task ``rank``: alpha 0.85, beta 0.2, gamma 0.6, delta 0.75, stage weights 1.0,
    0.6, 0.8, 0.6): its operations as the jar's bytecode does them, the parameters those that
    reproduce the jar's answers exactly; so the decomposition is exact, not an
    approximation (``tests/test_bootstrap.py`` checks it against the jar's corpus score).
ROUGE-L (``rouge_l``) and CIDEr-D (``cider``)
    the scorer's sentence score; the corpus score is their mean. CIDEr-D's document
    frequencies come from the whole slot's references and stay fixed for every resample (a
    resample with repeated dialogues would otherwise change the IDF of every n-gram).
Dist-1..3
    from the hypotheses themselves: the distinct n-grams of a resample are those of the
    distinct dialogues in it, the total counts every copy.

:func:`corpus_scores` turns the statistics and a matrix of resampled dialogue indices into one
score per resample and metric (x100, per-reference slots averaged as :mod:`evaluate` does);
with the identity resample it reproduces :func:`tiktalk.metrics.evaluate.evaluate` exactly,
bit for bit (``tests/test_bootstrap.py``).

File (``results/statistics/{baseline}/{split}.npz``, :data:`STATS_VERSION`): NumPy ``.npz``
with ``version``, ``protocol`` (str), ``texts`` (str: JSON ``{"ids": [...], "hypotheses":
[...]}``, N each, the references' order), ``bleu`` int64 (N, S, 10), ``rouge_l`` and ``cider`` float64 (N, S), and ``meteor``
float64 (N, S, 23) when METEOR was scored; S reference slots.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from pycocoevalcap.bleu.bleu_scorer import BleuScorer
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge

from tiktalk.formats import METRIC_KEYS
from tiktalk.io import atomic_path
from tiktalk.metrics.scorers import METEOR_STATS, MeteorProcess
from tiktalk.metrics.tokenize import char_tokenize, char_tokens

STATS_VERSION = 1
BLEU_N = 4
_BLEU_SMALL, _BLEU_TINY = 1e-9, 1e-15        # pycocoevalcap's BleuScorer.compute_score

# METEOR 1.5 computeMetrics for `-l en` (task rank): MeteorScorer's alpha, beta, gamma, delta
# and the weights of its matcher stages (exact, stem, synonym, paraphrase)
METEOR_ALPHA, METEOR_BETA, METEOR_GAMMA, METEOR_DELTA = 0.85, 0.20, 0.60, 0.75
METEOR_WEIGHTS = (1.0, 0.60, 0.80, 0.60)
_STAGES = len(METEOR_WEIGHTS)
_CHUNKS = 4 + 4 * _STAGES                    # index of `chunks` in a statistics row


@dataclass(frozen=True)
class CorpusStats:
    """One system's per-dialogue statistics on one split (module docstring)."""

    protocol: str
    ids: tuple[str, ...]
    hypotheses: tuple[str, ...]               # raw responses (Dist-n tokenizes them)
    bleu: np.ndarray                          # int64 (N, S, 10)
    rouge_l: np.ndarray                       # float64 (N, S)
    cider: np.ndarray                         # float64 (N, S)
    meteor: np.ndarray | None = None          # float64 (N, S, 23)

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def n_slots(self) -> int:
        return self.bleu.shape[1]

    def keys(self) -> tuple[str, ...]:
        """The metric keys these statistics give (METEOR only when it was scored)."""
        return tuple(k for k in METRIC_KEYS if k != "meteor" or self.meteor is not None)


# ------------------------------------------------------------------ statistics of one corpus


def bleu_stats(gts: Mapping[int, Sequence[str]], res: Mapping[int, Sequence[str]]) -> np.ndarray:
    """(N, 10) ints per segment, in the order of ``res``: testlen, the 'closest' reflen,
    guess 1..4, correct 1..4, exactly as ``Bleu(4).compute_score`` cooks them."""
    scorer = BleuScorer(n=BLEU_N)
    for i in res:
        scorer += (res[i][0], gts[i])
    rows = []
    for comps in scorer.ctest:
        testlen = comps["testlen"]
        reflen = scorer._single_reflen(comps["reflen"], "closest", testlen)
        rows.append([testlen, reflen, *comps["guess"], *comps["correct"]])
    return np.asarray(rows, dtype=np.int64).reshape(len(rows), 2 + 2 * BLEU_N)


def slot_stats(gts: Mapping[int, Sequence[str]], res: Mapping[int, Sequence[str]],
               meteor: MeteorProcess | None) -> dict[str, np.ndarray]:
    """Every metric's per-segment statistics of one corpus (one reference slot)."""
    out = {"bleu": bleu_stats(gts, res),
           "rouge_l": np.asarray(Rouge().compute_score(gts, res)[1], dtype=np.float64),
           "cider": np.asarray(Cider().compute_score(gts, res)[1], dtype=np.float64)}
    if meteor is not None:
        out["meteor"] = np.asarray(meteor.segment_stats(gts, res), dtype=np.float64)
    return out


def corpora(checked) -> tuple[list[dict[int, list[str]]], dict[int, list[str]]]:
    """The corpora nlg-eval scores for inputs checked by :mod:`tiktalk.metrics.evaluate`: one ``gts`` per reference slot
    (per-reference: slot k holds reference k of every dialogue; all-references: one corpus
    with every reference), and ``res``, the tokenized hypotheses, keyed by dialogue index."""
    ids, raw_hyps, raw_refs, n_slots = checked
    refs = [[char_tokenize(r) for r in rs] for rs in raw_refs]
    res = {i: [char_tokenize(h)] for i, h in enumerate(raw_hyps)}
    if n_slots is None:  # all-references
        return [{i: rs for i, rs in enumerate(refs)}], res
    return [{i: [rs[k]] for i, rs in enumerate(refs)} for k in range(n_slots)], res


def corpus_stats(checked, meteor: MeteorProcess | None, protocol: str) -> CorpusStats:
    """The statistics of inputs checked by :mod:`tiktalk.metrics.evaluate` (its ``_checked``),
    METEOR's from the open process ``meteor`` (none when it is None)."""
    ids, raw_hyps, _, _ = checked
    gts_slots, res = corpora(checked)
    slots = [slot_stats(gts, res, meteor) for gts in gts_slots]

    def stack(key):
        return np.stack([s[key] for s in slots], axis=1)

    return CorpusStats(protocol, tuple(ids), tuple(raw_hyps), stack("bleu"), stack("rouge_l"),
                       stack("cider"), stack("meteor") if meteor is not None else None)


# ------------------------------------------------------------------ corpus scores from totals


def bleu_from_totals(testlen: int, reflen: int, guess: Sequence[int], correct: Sequence[int]) -> list[float]:
    """BLEU-1..4 of corpus totals: pycocoevalcap's ``BleuScorer.compute_score`` arithmetic."""
    bleus, bleu = [], 1.0
    for k in range(BLEU_N):
        bleu *= float(correct[k] + _BLEU_TINY) / (guess[k] + _BLEU_SMALL)
        bleus.append(bleu ** (1.0 / (k + 1)))
    ratio = (testlen + _BLEU_TINY) / (reflen + _BLEU_SMALL)
    if ratio < 1:
        bleus = [b * math.exp(1 - 1 / ratio) for b in bleus]
    return bleus


def _jdiv(a: float, b: float) -> float:
    """Java's double division: x/0 is +-inf, 0/0 NaN (Python raises)."""
    if b != 0:
        return a / b
    if a == 0 or math.isnan(a):
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def meteor_from_totals(s: Sequence[float]) -> float:
    """METEOR 1.5's ``computeMetrics`` on summed statistics (23 numbers), same operations."""
    test_len, ref_len, test_fw, ref_fw = s[0], s[1], s[2], s[3]
    stages = [s[4 + 4 * i: 8 + 4 * i] for i in range(_STAGES)]   # tc, rc, tf, rf
    chunks, test_words, ref_words = s[_CHUNKS], s[_CHUNKS + 1], s[_CHUNKS + 2]
    test_total = ref_total = 0.0
    for tc, rc, tf, rf in stages:
        test_total += tc
        ref_total += rc
        test_total += tf
        ref_total += rf
    d = METEOR_DELTA
    test_wlen = d * (test_len - test_fw) + (1.0 - d) * test_fw
    ref_wlen = d * (ref_len - ref_fw) + (1.0 - d) * ref_fw
    test_wm = ref_wm = 0.0
    for (tc, _, _, _), w in zip(stages, METEOR_WEIGHTS):
        test_wm += tc * w * d
    for (_, rc, _, _), w in zip(stages, METEOR_WEIGHTS):
        ref_wm += rc * w * d
    for (_, _, tf, _), w in zip(stages, METEOR_WEIGHTS):
        test_wm += tf * w * (1.0 - d)
    for (_, _, _, rf), w in zip(stages, METEOR_WEIGHTS):
        ref_wm += rf * w * (1.0 - d)
    precision = _jdiv(test_wm, test_wlen)
    recall = _jdiv(ref_wm, ref_wlen)
    fmean = _jdiv(1.0, _jdiv(1.0 - METEOR_ALPHA, precision) + _jdiv(METEOR_ALPHA, recall))
    if test_total == test_len and ref_total == ref_len and chunks == 1.0:
        frag = 0.0
    else:
        frag = _jdiv(chunks, (test_words + ref_words) / 2.0)
    penalty = METEOR_GAMMA * (math.nan if math.isnan(frag) else frag ** METEOR_BETA)
    score = fmean * (1.0 - penalty)
    return 0.0 if math.isnan(score) else max(score, 0.0)


def meteor_addable(stats: np.ndarray) -> np.ndarray:
    """Segment statistics as ``MeteorStats.addStats`` adds them: a segment whose every word
    matches, in one chunk, contributes no chunks."""
    out = np.array(stats, dtype=np.float64, copy=True)
    test_total = out[..., 4:_CHUNKS:4].sum(-1) + out[..., 6:_CHUNKS:4].sum(-1)
    ref_total = out[..., 5:_CHUNKS:4].sum(-1) + out[..., 7:_CHUNKS:4].sum(-1)
    whole = (test_total == out[..., 0]) & (ref_total == out[..., 1]) & (out[..., _CHUNKS] == 1.0)
    out[..., _CHUNKS][whole] = 0.0
    return out


# ------------------------------------------------------------------ resampled corpus scores


def identity(n: int) -> np.ndarray:
    """The unresampled corpus as a (1, n) index matrix."""
    return np.arange(n, dtype=np.int64)[None, :]


def counts_of(idx: np.ndarray, n: int) -> np.ndarray:
    """(B, n) float64: how often each dialogue is in each resample (rows of ``idx``)."""
    b = idx.shape[0]
    flat = (np.arange(b, dtype=np.int64)[:, None] * n + idx).ravel()
    return np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)


def _means(values: np.ndarray, idx: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Per resample, ``np.mean`` of ``values`` over its dialogues (the scorers' corpus mean)."""
    return np.concatenate([np.mean(values[idx[i:i + chunk]], axis=1)
                           for i in range(0, idx.shape[0], chunk)])


def _ngram_table(hypotheses: Sequence[str], n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(per dialogue n-gram count, owner dialogue of each distinct (dialogue, gram) pair,
    gram id of each pair sorted by gram)."""
    ids: dict[tuple[str, ...], int] = {}
    totals, owners, grams = [], [], []
    for d, text in enumerate(hypotheses):
        tokens = char_tokens(text)
        seen = {tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)}
        totals.append(max(0, len(tokens) - n + 1))
        for g in seen:
            owners.append(d)
            grams.append(ids.setdefault(g, len(ids)))
    owners_a, grams_a = np.asarray(owners, dtype=np.int64), np.asarray(grams, dtype=np.int64)
    order = np.argsort(grams_a, kind="stable")
    return np.asarray(totals, dtype=np.float64), owners_a[order], grams_a[order]


def distinct_scores(hypotheses: Sequence[str], idx: np.ndarray, counts: np.ndarray, n: int) -> np.ndarray:
    """Dist-n (x100) of each resample: distinct n-grams of its distinct dialogues over every
    n-gram of every copy (:func:`tiktalk.metrics.diversity.distinct_n`)."""
    totals, owners, grams = _ngram_table(hypotheses, n)
    total = counts @ totals
    if not len(grams):
        return np.zeros(idx.shape[0])
    starts = np.flatnonzero(np.r_[True, grams[1:] != grams[:-1]])
    present = counts > 0
    chunk = max(1, (1 << 24) // len(grams))
    distinct = np.concatenate([
        np.logical_or.reduceat(present[i:i + chunk][:, owners], starts, axis=1).sum(axis=1)
        for i in range(0, idx.shape[0], chunk)])
    return np.array([100.0 * (int(d) / int(t)) if t else 0.0 for d, t in zip(distinct, total)])


def corpus_scores(stats: CorpusStats, idx: np.ndarray) -> dict[str, np.ndarray]:
    """``{metric key: (B,) scores x100}`` of the resamples ``idx`` ((B, N) dialogue indices).

    Row ``identity(N)`` gives exactly :func:`tiktalk.metrics.evaluate.evaluate`'s values."""
    idx = np.asarray(idx, dtype=np.int64)
    if idx.ndim != 2 or (idx.size and (idx.min() < 0 or idx.max() >= stats.n)):
        raise ValueError(f"resample indices must be a (B, {stats.n}) matrix of dialogue indices")
    counts = counts_of(idx, stats.n)
    per_slot: dict[str, list[np.ndarray]] = {k: [] for k in ("bleu_1", "bleu_2", "bleu_3", "bleu_4",
                                                            "meteor", "rouge_l", "cider")}
    for s in range(stats.n_slots):
        totals = counts @ stats.bleu[:, s, :].astype(np.float64)     # integers: exact
        bleu = np.array([bleu_from_totals(int(t[0]), int(t[1]), [int(x) for x in t[2:6]],
                                          [int(x) for x in t[6:10]]) for t in totals])
        for k in range(BLEU_N):
            per_slot[f"bleu_{k + 1}"].append(bleu[:, k])
        if stats.meteor is not None:
            sums = counts @ meteor_addable(stats.meteor[:, s, :])      # integer-valued: exact
            per_slot["meteor"].append(np.array([meteor_from_totals(list(map(float, t))) for t in sums]))
        per_slot["rouge_l"].append(_means(stats.rouge_l[:, s], idx))
        per_slot["cider"].append(_means(stats.cider[:, s], idx))
    out: dict[str, np.ndarray] = {}
    for key, slots in per_slot.items():
        if not slots:
            continue
        raw = slots[0] if stats.protocol == "all-references" else sum(slots) / stats.n_slots
        out[key] = 100.0 * raw
    for n in (1, 2, 3):
        out[f"dist_{n}"] = distinct_scores(stats.hypotheses, idx, counts, n)
    return {k: out[k] for k in stats.keys()}


def point_scores(stats: CorpusStats) -> dict[str, float]:
    """The corpus scores of the unresampled set (equal to the scorers' corpus scores)."""
    return {k: float(v[0]) for k, v in corpus_scores(stats, identity(stats.n)).items()}


# ------------------------------------------------------------------ the file


def write_stats(path: str | os.PathLike, stats: CorpusStats) -> None:
    texts = json.dumps({"ids": list(stats.ids), "hypotheses": list(stats.hypotheses)},
                       ensure_ascii=False)
    arrays = {"version": np.int64(STATS_VERSION), "protocol": np.str_(stats.protocol),
              "texts": np.str_(texts), "bleu": stats.bleu, "rouge_l": stats.rouge_l, "cider": stats.cider}
    if stats.meteor is not None:
        arrays["meteor"] = stats.meteor
    save_npz(path, arrays)


def save_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """A compressed ``.npz`` (what ``np.savez_compressed`` writes), written atomically and
    byte for byte the same for the same arrays: its zip entries carry a fixed date, not the
    time of writing."""
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for name, value in arrays.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                with zf.open(info, "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, np.asanyarray(value), allow_pickle=False)


def load_npz(path: str | os.PathLike, version: int, what: str) -> dict[str, np.ndarray]:
    """The arrays of a ``.npz`` of ``version`` (no pickles); errors name the file and ``what``."""
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a {what} file ({exc})") from None
    if data.get("version") is None or int(data["version"]) != version:
        raise ValueError(f"{path}: {what} of version {data.get('version')!r}, expected {version}")
    return data


def read_stats(path: str | os.PathLike) -> CorpusStats:
    """A statistics file, version and shapes checked (errors name the file)."""
    data = load_npz(path, STATS_VERSION, "metric statistics")
    texts = json.loads(str(data["texts"]))
    n = len(texts["ids"])
    meteor = data.get("meteor")
    shapes_ok = (data["bleu"].shape[::2] == (n, 2 + 2 * BLEU_N) and len(texts["hypotheses"]) == n
                 and data["rouge_l"].shape == data["cider"].shape == data["bleu"].shape[:2]
                 and (meteor is None or meteor.shape == (*data["bleu"].shape[:2], METEOR_STATS)))
    if not shapes_ok:
        raise ValueError(f"{path}: arrays of inconsistent shapes")
    return CorpusStats(str(data["protocol"]), tuple(texts["ids"]), tuple(texts["hypotheses"]),
                       data["bleu"], data["rouge_l"],
                       data["cider"], meteor)
