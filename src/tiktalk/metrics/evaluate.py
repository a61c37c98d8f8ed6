"""Automatic metrics of the paper (sec. 4.1) with nlg-eval's scorers (docs/metric-protocol.md).

Text: every hypothesis and reference is tokenized into characters
(:func:`tiktalk.metrics.tokenize.char_tokenize`); nlg-eval adds no tokenization of its own.

Protocols (``protocol=``):

``"per-reference"`` (default, the paper's "for each ground-truth response separately and take
    the averages"): for each reference slot k, one corpus-level score of all hypotheses
    against reference k alone (nlg-eval's file API with a single reference file), then the
    mean over the K slots. Every dialogue must have the same number K of references; otherwise
    a ValueError names dialogues whose count differs (slot k would not be defined for them).
``"all-references"``: one corpus-level score with all references of each dialogue at once,
    i.e. exactly nlg-eval's ``compute_metrics`` on the tokenized files (counts may differ).

Dist-1/2/3 do not depend on the references and are computed once over all hypotheses.
All values are x100 (CIDEr too: raw CIDEr-D is in [0, 10], so x100 is in [0, 1000]).

METEOR runs a Java jar; without Java, :class:`~tiktalk.metrics.scorers.MeteorUnavailable`
says what to install. ``use_meteor=False`` leaves METEOR out of the result (no ``"meteor"``
key, never a 0), as nlg-eval's ``metrics_to_omit`` does; the pipeline always scores it.

Empty hypotheses are kept: they count in ``n`` and in every corpus average, each with score 0
(see :mod:`tiktalk.metrics.scorers` for how each scorer reaches 0) and no n-grams for Dist-n.
Empty references (after tokenization) are an error naming the dialogues.
CIDEr-D's IDF comes from the references being scored, so a corpus of one dialogue has
CIDEr 0 by construction (log(1) = 0 weights every n-gram 0).
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from typing import Mapping, Sequence

from tiktalk.data.predictions import read_predictions
from tiktalk.formats import METRIC_KEYS
from tiktalk.io import read_jsonl, write_json
from tiktalk.metrics.diversity import distinct_n
from tiktalk.metrics.bootstrap import DEFAULT_LEVEL, DEFAULT_SEED, bootstrap_stats
from tiktalk.metrics.scorers import OVERLAP_KEYS, MeteorProcess, overlap_scores
from tiktalk.metrics.statistics import corpora, corpus_stats, point_scores, write_stats
from tiktalk.metrics.tokenize import char_tokenize, char_tokens

PROTOCOLS = ("per-reference", "all-references")
_SHOW = 5  # how many offending ids an error message names


def _name_some(ids: Sequence[str]) -> str:
    shown = ", ".join(repr(i) for i in ids[:_SHOW])
    more = f" and {len(ids) - _SHOW} more" if len(ids) > _SHOW else ""
    return f"{len(ids)} dialogue(s): {shown}{more}"


def _index_rows(rows: Sequence[dict], field: str, what: str) -> dict[str, object]:
    """{dialogue_id: row[field]} with type checks; duplicate ids are an error naming them."""
    out: dict[str, object] = {}
    dupes: list[str] = []
    for pos, row in enumerate(rows):
        if not isinstance(row, dict) or "dialogue_id" not in row or field not in row:
            raise ValueError(f"{what} row {pos}: expected an object with 'dialogue_id' and '{field}'")
        did = row["dialogue_id"]
        if not isinstance(did, str):
            raise ValueError(f"{what} row {pos}: dialogue_id must be a string, got {did!r}")
        if did in out:
            if did not in dupes:
                dupes.append(did)
            continue
        out[did] = row[field]
    if dupes:
        raise ValueError(f"{what}: duplicate dialogue ids in {_name_some(dupes)}")
    return out


def align(predictions: Sequence[dict], references: Sequence[dict]) -> tuple[list[str], list[str], list[list[str]]]:
    """Pair predictions with references, in the order of ``references``.

    Returns (dialogue ids, raw hypotheses, raw reference lists). Raises ValueError naming the
    dialogues when ids are duplicated, missing from the predictions, extra in the predictions,
    when a field has the wrong type, or when a reference is empty after tokenization.
    """
    hyps = _index_rows(predictions, "response", "predictions")
    refs = _index_rows(references, "references", "references")
    if not refs:
        raise ValueError("references: no dialogues to evaluate")
    missing = [d for d in refs if d not in hyps]
    extra = [d for d in hyps if d not in refs]
    problems = []
    if missing:
        problems.append(f"predictions lack {_name_some(missing)}")
    if extra:
        problems.append(f"predictions have ids not in the references, {_name_some(extra)}")
    if problems:
        raise ValueError("; ".join(problems))

    ids = list(refs)
    bad_hyp = [d for d in ids if not isinstance(hyps[d], str)]
    if bad_hyp:
        raise ValueError(f"predictions: 'response' must be a string in {_name_some(bad_hyp)}")
    bad_ref = [d for d in ids if not (isinstance(refs[d], list) and refs[d]
                                      and all(isinstance(r, str) for r in refs[d]))]
    if bad_ref:
        raise ValueError(f"references: 'references' must be a non-empty list of strings in {_name_some(bad_ref)}")
    empty_ref = [d for d in ids if any(not char_tokenize(r) for r in refs[d])]
    if empty_ref:
        raise ValueError(f"references: empty reference (after removing whitespace) in {_name_some(empty_ref)}")
    return ids, [hyps[d] for d in ids], [list(refs[d]) for d in ids]


def _reference_count(ids: Sequence[str], refs: Sequence[Sequence[str]]) -> int:
    counts = Counter(len(r) for r in refs)
    if len(counts) == 1:
        return next(iter(counts))
    k, _ = counts.most_common(1)[0]
    odd = [d for d, r in zip(ids, refs) if len(r) != k]
    raise ValueError(
        "per-reference protocol needs the same number of references for every dialogue; "
        f"counts {dict(sorted(counts.items()))}; differing from {k}: {_name_some(odd)} "
        "(use protocol 'all-references' or fix the references)"
    )


def _checked(predictions: Sequence[dict], references: Sequence[dict], protocol: str):
    """Validate one system's inputs: (ids, hypotheses, references, reference slots or None)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    ids, raw_hyps, raw_refs = align(predictions, references)
    n_slots = _reference_count(ids, raw_refs) if protocol == "per-reference" else None
    return ids, raw_hyps, raw_refs, n_slots


def _score(checked, meteor: MeteorProcess | None) -> dict:
    """The metrics of :func:`_checked` inputs, METEOR from the open process ``meteor`` (left
    out when ``meteor`` is None)."""
    ids, raw_hyps, raw_refs, n_slots = checked
    gts_slots, res = corpora(checked)
    slots = [overlap_scores(gts, res, meteor) for gts in gts_slots]
    if n_slots is None:  # all-references
        overlap = slots[0]
    else:
        overlap = {key: sum(s[key] for s in slots) / n_slots for key in slots[0]}

    metrics: dict = {key: 100.0 * overlap[key] for key in OVERLAP_KEYS if key in overlap}
    tokens = [char_tokens(h) for h in raw_hyps]
    for n in (1, 2, 3):
        metrics[f"dist_{n}"] = 100.0 * distinct_n(tokens, n)
    metrics["n"] = len(ids)
    keys = [k for k in (*METRIC_KEYS, "n") if meteor is not None or k != "meteor"]
    assert set(metrics) == set(keys)
    return {key: metrics[key] for key in keys}


def _meteor(use_meteor: bool):
    """A fresh METEOR process to use as a context manager, or a null context yielding None."""
    return MeteorProcess() if use_meteor else contextlib.nullcontext()


def evaluate(
    predictions: Sequence[dict],
    references: Sequence[dict],
    protocol: str = "per-reference",
    *,
    meteor: MeteorProcess | None = None,
    use_meteor: bool = True,
) -> dict:
    """Metrics of ``predictions`` ({dialogue_id, response}) against ``references``
    ({dialogue_id, references: [str, ...]}).

    Returns {bleu_1..bleu_4, meteor, rouge_l, cider, dist_1..dist_3: float (x100), n: int}.
    ``meteor``: an open :class:`MeteorProcess` to reuse (it is left open); by default one is
    started for this call and closed before returning. ``use_meteor=False``: no METEOR, no
    ``"meteor"`` key. Inputs are validated before any JVM starts.
    """
    checked = _checked(predictions, references, protocol)
    if meteor is not None or not use_meteor:
        return _score(checked, meteor if use_meteor else None)
    with MeteorProcess() as own:
        return _score(checked, own)


def evaluate_files(
    pred_path: str | os.PathLike,
    ref_path: str | os.PathLike,
    out_path: str | os.PathLike,
    protocol: str = "per-reference",
    use_meteor: bool = True,
    stats_path: str | os.PathLike | None = None,
    bootstrap: int = 0,
    bootstrap_seed: int = DEFAULT_SEED,
    level: float = DEFAULT_LEVEL,
) -> dict:
    """:func:`evaluate` on two JSON-lines files; writes the metrics JSON atomically and returns it.

    ``stats_path``: also write the per-dialogue statistics (:mod:`tiktalk.metrics.statistics`).
    ``bootstrap`` > 0: the metrics JSON also holds ``"intervals": {metric: [low, high]}`` over
    that many resamples of the dialogues, and ``"bootstrap": {"resamples", "seed", "level"}``
    (:mod:`tiktalk.metrics.bootstrap`). Validation errors are re-raised as ValueError prefixed
    with both file names.
    """
    return evaluate_many({"system": pred_path}, ref_path, {"system": out_path}, protocol,
                         use_meteor=use_meteor,
                         stats_paths={"system": stats_path} if stats_path else None,
                         bootstrap=bootstrap, bootstrap_seed=bootstrap_seed, level=level)["system"]


def evaluate_many(
    pred_paths: Mapping[str, str | os.PathLike],
    ref_path: str | os.PathLike,
    out_paths: Mapping[str, str | os.PathLike],
    protocol: str = "per-reference",
    use_meteor: bool = True,
    stats_paths: Mapping[str, str | os.PathLike] | None = None,
    bootstrap: int = 0,
    bootstrap_seed: int = DEFAULT_SEED,
    level: float = DEFAULT_LEVEL,
) -> dict[str, dict]:
    """:func:`evaluate_files` for several systems against one reference file, with ONE METEOR
    JVM (its start, loading the paraphrase table, costs ~10 CPU seconds; scoring 50 lines
    costs milliseconds). ``pred_paths`` and ``out_paths`` (and ``stats_paths``, when given)
    map a system name to its files.

    Every predictions file is read and validated before the JVM starts and before anything is
    written, so one bad file fails the call naming it and leaves no metrics behind. Returns
    ``{name: metrics}`` in the order of ``pred_paths``; the values equal :func:`evaluate_files`'s.
    The statistics must reproduce the scorers' corpus scores (:func:`check_statistics`).
    """
    if set(pred_paths) != set(out_paths) or (stats_paths is not None and set(stats_paths) != set(pred_paths)):
        raise ValueError(f"systems with predictions {sorted(pred_paths)} but outputs {sorted(out_paths)}"
                         + (f" and statistics {sorted(stats_paths)}" if stats_paths is not None else ""))
    if bootstrap < 0:
        raise ValueError(f"bootstrap resamples must be >= 0, got {bootstrap}")
    references = read_jsonl(ref_path)
    checked = {}
    for name, path in pred_paths.items():
        try:
            checked[name] = _checked(read_predictions(path), references, protocol)
        except ValueError as exc:
            raise ValueError(f"{path} vs {ref_path}: {exc}") from None
    with _meteor(use_meteor) as meteor:
        results = {name: _score(c, meteor) for name, c in checked.items()}
        stats = ({name: corpus_stats(c, meteor, protocol) for name, c in checked.items()}
                 if stats_paths or bootstrap else {})
    for name, st in stats.items():
        check_statistics(st, results[name], where=str(pred_paths[name]))
        if bootstrap:
            intervals = bootstrap_stats(st, bootstrap, bootstrap_seed, level)
            results[name]["intervals"] = {k: list(v) for k, v in intervals.items()}
            results[name]["bootstrap"] = {"resamples": bootstrap, "seed": bootstrap_seed, "level": level}
    for name, metrics in results.items():
        if stats_paths:
            write_stats(stats_paths[name], stats[name])
        write_json(out_paths[name], metrics)
    return results


#: how far the statistics' corpus scores may be from the scorers' (x100) before it is an error;
#: on this package's tests they are equal bit for bit
STATISTICS_TOLERANCE = 1e-9


def check_statistics(stats, metrics: Mapping, where: str = "") -> float:
    """The largest difference between the statistics' corpus scores and ``metrics`` (the
    scorers'); a ValueError naming the metric when one exceeds :data:`STATISTICS_TOLERANCE`."""
    points = point_scores(stats)
    worst = 0.0
    for key, value in points.items():
        diff = abs(value - metrics[key])
        if not diff <= STATISTICS_TOLERANCE:
            raise ValueError(f"{where}: the per-dialogue statistics give {key} = {value!r}, the "
                             f"scorer {metrics[key]!r}; the bootstrap would not match the score")
        worst = max(worst, diff)
    return worst


_LABELS = {
    "bleu_1": "BLEU-1", "bleu_2": "BLEU-2", "bleu_3": "BLEU-3", "bleu_4": "BLEU-4",
    "meteor": "METEOR", "rouge_l": "ROUGE-L", "cider": "CIDEr",
    "dist_1": "Dist-1", "dist_2": "Dist-2", "dist_3": "Dist-3",
}


def format_table(metrics: dict, title: str | None = None) -> str:
    """A plain two-column text table of a metrics dict (values x100, 2 decimals as in the paper),
    with each metric's interval when the dict has ``intervals``; metrics left out (METEOR
    without Java) are left out here too."""
    intervals = metrics.get("intervals") or {}
    lines = [title] if title else []
    head = f"{'metric':<8} {'value':>8}"
    if intervals:
        b = metrics.get("bootstrap", {})
        head += f"  {round(100 * b.get('level', DEFAULT_LEVEL))}% interval ({b.get('resamples')} resamples)"
    lines.append(head)
    for key in (k for k in METRIC_KEYS if k in metrics):
        line = f"{_LABELS[key]:<8} {metrics[key]:>8.2f}"
        if key in intervals:
            line += f"  [{intervals[key][0]:.2f}, {intervals[key][1]:.2f}]"
        lines.append(line)
    lines.append(f"{'n':<8} {metrics['n']:>8d}")
    return "\n".join(lines)
