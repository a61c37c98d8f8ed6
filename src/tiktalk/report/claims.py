"""Do the paper's conclusions hold on our runs? ``results/tables/claims.{csv,md}``.

The claims are data: ``tiktalk/resources/claims.yaml`` lists the paper's (sec. 4.3-4.4), and
the config's ``evaluation.claims.files`` adds a user's own in the same form (:func:`load_claims`;
the file's header says how an entry reads). A claim says that its ``higher`` rows beat its
``lower`` rows on each of its metrics; every (higher row, lower row, metric) is one paired
comparison (:func:`tiktalk.metrics.bootstrap.compare`): the difference higher - lower, its
bootstrap percentile interval and a two-sided p-value, on the same resamples for both rows.

Table 3 claims use the bootstrap replicates of the test dialogues
(:mod:`tiktalk.metrics.bootstrap`), Table 4 claims the filled rating sheets, with a bootstrap
over the rated items (each item's score of a system: its mean over the annotators; the same
resampled items for every system). Without filled sheets a Table 4 claim says "needs ratings".

Verdicts. A claim needs every one of its comparisons, so on one seed's runs it is tested as
an intersection-union test: its p-value is the largest of its comparisons' when every
difference goes the claimed way (no correction is due among them: each must hold). When a
comparison goes the other way, the claim's p-value is that of the most significant such one,
times the number of its comparisons (Bonferroni: any one of them contradicts the claim). Holm's
correction then runs across the claims of one table (on one seed's runs) at ``alpha``:

* on one seed's runs a claim **holds** when its corrected p is below ``alpha`` with every
  comparison the claimed way; it is **reversed** when its corrected p is below ``alpha`` with a
  comparison the other way; otherwise it is **not distinguishable**;
* over several seeds (config ``seeds``) a claim holds only if it holds on every seed's runs,
  is reversed only if it is reversed on every seed's, and is not distinguishable otherwise;
* "not run": a row it names is not among the runs; "needs ratings": a Table 4 claim without
  filled sheets.

The comparison shown for a claim is the one that decides its p-value (the weakest for a claim
that points the claimed way, the strongest contradiction otherwise), on the mean over the
seeds; beside it how many of its comparisons are significant the claimed way on their own, on
how many seeds the claim holds, and how many comparisons the paper's own numbers (Tables 3 and
4) agree with.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import yaml

from tiktalk.io import write_text_atomic
from tiktalk.metrics.bootstrap import (
    DEFAULT_LEVEL, Comparison, Replicates, compare, holm, resample_indices)
from tiktalk.report.paper import (
    COLUMN_FOR_KEY, TABLE3, TABLE3_METRIC_KEYS, TABLE4, TABLE4_CRITERIA)
from tiktalk.report.render import markdown_table, split_phrase, to_csv
from tiktalk.report.seeds import seed_mean, seed_mean_replicates

HOLDS, REVERSED, UNDECIDED = "holds", "reversed", "not distinguishable"
NEEDS_RATINGS, NOT_RUN = "needs ratings", "not run"
OTHERS = "others"
DEFAULT_ALPHA = 0.05
CLAIM_KEYS = ("id", "section", "statement", "table", "higher", "lower", "metrics")
METRICS = {
    3: {"similarity": TABLE3_METRIC_KEYS[:5], "diversity": TABLE3_METRIC_KEYS[5:],
        "all": TABLE3_METRIC_KEYS},
    4: {"all": TABLE4_CRITERIA},
}
METRIC_NAME = {**COLUMN_FOR_KEY, **{c: c for c in TABLE4_CRITERIA}}
PAPER = {3: TABLE3, 4: TABLE4}
CSV_FIELDS = ("claim", "table", "section", "statement", "rows", "metrics", "verdict", "comparison",
              "difference", "ci_low", "ci_high", "p_holm", "parts_holding", "seeds", "paper", "note")
COMPARISON_FIELDS = ("claim", "family", "higher", "lower", "metric", "difference", "ci_low",
                     "ci_high", "p", "result")


def default_claims_path() -> Path:
    """The paper's claims shipped with the package."""
    return Path(str(resources.files("tiktalk") / "resources" / "claims.yaml"))


@dataclass(frozen=True)
class Claim:
    id: str
    section: str
    statement: str
    table: int
    higher: tuple[str, ...] | str          # row names, or OTHERS
    lower: tuple[str, ...] | str
    metrics: tuple[str, ...]               # metric keys (Table 3) or criteria (Table 4)

    def rows_text(self) -> str:
        def side(rows):
            return OTHERS if rows == OTHERS else ", ".join(rows)
        return f"{side(self.higher)} > {side(self.lower)}"


def _metric_keys(value, table: int, where: str) -> tuple[str, ...]:
    groups = METRICS[table]
    if isinstance(value, str) and value in groups:
        return tuple(groups[value])
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not names:
        raise ValueError(f"{where}: metrics must be a group ({', '.join(groups)}) or a list")
    by_name = {name: key for key, name in METRIC_NAME.items()}
    known = TABLE3_METRIC_KEYS if table == 3 else TABLE4_CRITERIA
    keys = []
    for name in names:
        key = by_name.get(name, name)
        if key not in known:
            raise ValueError(f"{where}: {name!r} is not a metric of Table {table} "
                             f"({', '.join(METRIC_NAME[k] for k in known)})")
        keys.append(key)
    return tuple(keys)


def _rows(value, where: str, side: str):
    if value == OTHERS:
        return OTHERS
    if not isinstance(value, list) or not value or not all(isinstance(r, str) for r in value):
        raise ValueError(f"{where}: {side} must be a list of row names or {OTHERS!r}")
    return tuple(value)


def parse_claim(entry, where: str) -> Claim:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: a claim must be a mapping with keys {', '.join(CLAIM_KEYS)}")
    unknown = sorted(set(entry) - set(CLAIM_KEYS))
    missing = [k for k in CLAIM_KEYS if k not in entry]
    if unknown or missing:
        raise ValueError(f"{where}: " + "; ".join(
            ([f"unknown key(s) {unknown}"] if unknown else []) + ([f"missing {missing}"] if missing else [])))
    if entry["table"] not in METRICS:
        raise ValueError(f"{where}: table must be 3 or 4, got {entry['table']!r}")
    where = f"{where} ({entry['id']})"
    claim = Claim(str(entry["id"]), str(entry["section"]), str(entry["statement"]), entry["table"],
                  _rows(entry["higher"], where, "higher"), _rows(entry["lower"], where, "lower"),
                  _metric_keys(entry["metrics"], entry["table"], where))
    if claim.higher == OTHERS and claim.lower == OTHERS:
        raise ValueError(f"{where}: higher and lower cannot both be {OTHERS!r}")
    both = set(claim.higher) & set(claim.lower) if OTHERS not in (claim.higher, claim.lower) else set()
    if both:
        raise ValueError(f"{where}: rows {sorted(both)} are on both sides")
    return claim


def load_claims(paths: Sequence[str | os.PathLike]) -> list[Claim]:
    """The claims of every file, in order; errors name the file and the entry."""
    claims: list[Claim] = []
    seen: dict[str, str] = {}
    for path in paths:
        try:
            entries = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"{path}: cannot read claims ({exc})") from None
        if not isinstance(entries, list):
            raise ValueError(f"{path}: expected a YAML list of claims")
        for i, entry in enumerate(entries, 1):
            claim = parse_claim(entry, f"{path}: claim {i}")
            if claim.id in seen:
                raise ValueError(f"{path}: claim {i}: id {claim.id!r} is already used in {seen[claim.id]}")
            seen[claim.id] = str(path)
            claims.append(claim)
    return claims


# ------------------------------------------------------------------ which rows, which comparisons


def sides(claim: Claim, rows: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """(higher rows, lower rows, rows the claim names that are not in ``rows``)."""
    named = [r for side in (claim.higher, claim.lower) if side != OTHERS for r in side]
    absent = [r for r in named if r not in rows]
    higher = [r for r in rows if r not in claim.lower] if claim.higher == OTHERS else list(claim.higher)
    lower = [r for r in rows if r not in claim.higher] if claim.lower == OTHERS else list(claim.lower)
    return higher, lower, absent


def parts_of(claim: Claim, rows: Sequence[str]) -> list[tuple[str, str, str]]:
    higher, lower, _ = sides(claim, rows)
    return [(h, lo, k) for k in claim.metrics for h in higher for lo in lower]


@dataclass(frozen=True)
class Part:
    """One comparison of a claim: higher row - lower row on one metric."""

    higher: str
    lower: str
    metric: str
    comparison: Comparison

    @property
    def difference(self) -> float:
        return self.comparison.difference

    def result(self, alpha: float) -> str:
        """This comparison alone at ``alpha`` (no correction)."""
        if self.comparison.p < alpha and self.difference != 0:
            return HOLDS if self.difference > 0 else REVERSED
        return UNDECIDED


@dataclass(frozen=True)
class ClaimTest:
    """A claim's test on one family: which way it points, its p-value before and after Holm's
    correction across the family's claims, and the comparison that decides it."""

    direction: str                 # HOLDS: every comparison the claimed way; else REVERSED
    p: float
    deciding: Part
    p_holm: float = 1.0

    def verdict(self, alpha: float) -> str:
        return self.direction if self.p_holm < alpha else UNDECIDED


def claim_test(parts: Sequence[Part]) -> ClaimTest:
    """The claim holds only if every comparison does (an intersection-union test: its p is the
    largest of its comparisons', no correction among them); it is contradicted if any one goes
    the other way (the smallest such p times the number of comparisons, Bonferroni)."""
    if all(p.difference > 0 for p in parts):
        weakest = max(parts, key=lambda p: p.comparison.p)
        return ClaimTest(HOLDS, weakest.comparison.p, weakest)
    against = [p for p in parts if p.difference < 0] or [p for p in parts if p.difference == 0]
    strongest = min(against, key=lambda p: p.comparison.p)
    p = min(1.0, strongest.comparison.p * len(parts)) if strongest.difference < 0 else 1.0
    return ClaimTest(REVERSED, p, strongest)


def family(claims: Sequence[Claim], rep: Replicates, level: float = DEFAULT_LEVEL
           ) -> dict[str, tuple[list[Part], ClaimTest]]:
    """Every comparison of ``claims`` on ``rep`` (its runs named by row) and each claim's test,
    Holm-corrected across the claims: ``{claim id: (parts, test)}``."""
    parts: dict[str, list[Part]] = {}
    for claim in claims:
        parts[claim.id] = []
        for h, lo, k in parts_of(claim, rep.runs):
            if not (np.isfinite(rep.point(h, k)) and np.isfinite(rep.point(lo, k))):
                raise ValueError(f"claim {claim.id}: {METRIC_NAME[k]} was not scored for "
                                 f"{h if not np.isfinite(rep.point(h, k)) else lo}")
            c = compare(rep.point(h, k), rep.point(lo, k), rep.values(h, k), rep.values(lo, k), level)
            parts[claim.id].append(Part(h, lo, k, c))
    tests = {cid: claim_test(ps) for cid, ps in parts.items()}
    adjusted = holm([t.p for t in tests.values()])
    return {cid: (parts[cid], replace(t, p_holm=a)) for (cid, t), a in zip(tests.items(), adjusted)}


def across_seeds(results: Sequence[str]) -> str:
    """A claim holds (or is reversed) only if it does on every seed's runs."""
    if results and all(r == HOLDS for r in results):
        return HOLDS
    if results and all(r == REVERSED for r in results):
        return REVERSED
    return UNDECIDED


def paper_check(claim: Claim, rows: Sequence[str]) -> str:
    """How many of the claim's comparisons (on ``rows``) the paper's own numbers agree with."""
    table = PAPER[claim.table]
    parts = [p for p in parts_of(claim, rows) if p[0] in table and p[1] in table]
    if not parts:
        return ""
    agree = sum(table[h][k] > table[lo][k] for h, lo, k in parts)
    ties = sum(table[h][k] == table[lo][k] for h, lo, k in parts)
    return f"{agree} of {len(parts)}" + (f" ({ties} tied)" if ties else "")


# ------------------------------------------------------------------ Table 3 runs by row


def relabel(rep: Replicates, names: Mapping[str, str]) -> Replicates:
    """The replicates of the runs in ``names`` (run -> row name), named by row."""
    idx = [rep.runs.index(run) for run in names]
    return Replicates(rep.resamples, rep.seed, rep.n, tuple(names.values()), rep.keys,
                      rep.points[idx], rep.replicates[idx])


def seed_families(rep: Replicates, runs_by_baseline: Mapping[str, Sequence[str]],
                  labels: Mapping[str, str], seeds: Sequence[int]) -> tuple[dict[str, Replicates], Replicates]:
    """Table 3's rows per seed (``{"seed 13": Replicates}``) and their mean over the seeds."""
    rows = {b: labels[b] for b in runs_by_baseline}
    dupes = sorted({r for r in rows.values() if list(rows.values()).count(r) > 1})
    if dupes:
        raise ValueError(f"several baselines are labelled {dupes}: a claim's row must be one run")
    per_seed = {f"seed {s}": relabel(rep, {runs[j]: rows[b] for b, runs in runs_by_baseline.items()})
                for j, s in enumerate(seeds)}
    keys = rep.keys
    points = np.array([[seed_mean([rep.point(r, k) for r in runs]) for k in keys]
                       for runs in runs_by_baseline.values()])
    reps = np.stack([np.stack([seed_mean_replicates(rep, runs, k) for k in keys], axis=-1)
                     for runs in runs_by_baseline.values()])
    mean = Replicates(rep.resamples, rep.seed, rep.n, tuple(rows.values()), keys, points, reps)
    return per_seed, mean


def ratings_replicates(scores: Mapping[str, np.ndarray], criteria: Sequence[str],
                       labels: Mapping[str, str], resamples: int, seed: int) -> Replicates:
    """Table 4 as replicates: ``scores[system]`` is (items, criteria), each item's mean
    rating over the annotators; the items are resampled, the same for every system."""
    systems = [s for s in scores if s in labels]
    n = next(iter(scores.values())).shape[0]
    idx = resample_indices(n, resamples, seed)
    points = np.array([scores[s].mean(axis=0) for s in systems])
    reps = np.stack([scores[s][idx].mean(axis=1) for s in systems])
    return Replicates(resamples, seed, n, tuple(labels[s] for s in systems), tuple(criteria),
                      points, reps)


def item_scores(ratings_dir: str | os.PathLike, key_path: str | os.PathLike) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """``({system: (items, criteria) mean rating over the annotators}, criteria)`` of the
    filled Table 4 sheets (checked as Table 4 checks them)."""
    from tiktalk.report.kit import annotation, human_eval

    key = annotation.read_key(key_path, human_eval.TASK)
    scale = human_eval.scale_of_key(key)
    ratings = annotation.read_filled_sheets(ratings_dir, key, human_eval.rating_parser(scale))
    items = {it["item"]: i for i, it in enumerate(key["items"])}
    systems = list(key["settings"]["systems"])
    sums = np.zeros((len(systems), len(items), len(scale.criteria)))
    counts = np.zeros((len(systems), len(items), 1))
    for r in ratings:
        s, i = systems.index(r.system), items[r.item]
        sums[s, i] += [r.values[c] for c in scale.criteria]
        counts[s, i] += 1
    if (counts == 0).any():
        raise ValueError(f"{ratings_dir}: some items have no rating of some system")
    means = sums / counts
    return {s: means[j] for j, s in enumerate(systems)}, tuple(scale.criteria)


# ------------------------------------------------------------------ the table


def _fmt(v: float) -> str:
    return f"{v:+.2f}"


def _p(v: float) -> str:
    return f"{v:.2g}" if v >= 1e-4 else "<1e-4"


def evaluate_claims(claims: Sequence[Claim], table3: tuple[dict[str, Replicates], Replicates] | None,
                    table4: Replicates | None, alpha: float = DEFAULT_ALPHA,
                    level: float = DEFAULT_LEVEL) -> tuple[list[dict], list[dict]]:
    """(claim rows, comparison rows): every claim with its verdict (module docstring)."""
    rows, comparisons = [], []
    for table, families in ((3, table3), (4, ({"ratings": table4}, table4) if table4 else None)):
        mine = [c for c in claims if c.table == table]
        if not mine:
            continue
        if families is None:
            rows += [_row(c, NEEDS_RATINGS if table == 4 else NOT_RUN, note="no filled rating sheets"
                          if table == 4 else "no runs") for c in mine]
            continue
        per_seed, mean = families
        ready = []
        for c in mine:
            absent = sides(c, mean.runs)[2]
            higher, lower, _ = sides(c, mean.runs)
            if absent or not higher or not lower:
                why = f"no run labelled {', '.join(absent)}" if absent else "no rows to compare"
                rows.append(_row(c, NOT_RUN, note=why))
            else:
                ready.append(c)
        results = {name: family(ready, rep, level) for name, rep in per_seed.items()}
        several = len(per_seed) > 1
        shown = family(ready, mean, level) if several else next(iter(results.values()))
        families_out = {**results, "mean over seeds": shown} if several else results
        for name, fam in families_out.items():
            for cid, (parts, _) in fam.items():
                comparisons += [{"claim": cid, "family": name, "higher": p.higher, "lower": p.lower,
                                 "metric": METRIC_NAME[p.metric], "difference": p.difference,
                                 "ci_low": p.comparison.low, "ci_high": p.comparison.high,
                                 "p": p.comparison.p, "result": p.result(alpha)} for p in parts]
        for c in ready:
            seeds = [fam[c.id][1].verdict(alpha) for fam in results.values()]
            parts, test = shown[c.id]
            d = test.deciding
            held = sum(p.result(alpha) == HOLDS for p in parts)
            seeds_text = (f"holds on {seeds.count(HOLDS)} of {len(seeds)} seeds" if table == 3 and several
                          else ("1 seed" if table == 3 else "rated runs"))
            rows.append({**_row(c, across_seeds(seeds)),
                         "comparison": f"{d.higher} - {d.lower}, {METRIC_NAME[d.metric]}",
                         "difference": d.difference, "ci_low": d.comparison.low,
                         "ci_high": d.comparison.high, "p_holm": test.p_holm,
                         "parts_holding": f"{held} of {len(parts)}", "seeds": seeds_text,
                         "paper": paper_check(c, mean.runs)})
    order = {c.id: i for i, c in enumerate(claims)}
    rows.sort(key=lambda r: order[r["claim"]])
    return rows, comparisons


def _row(c: Claim, verdict: str, note: str = "") -> dict:
    return {"claim": c.id, "table": c.table, "section": c.section, "statement": c.statement,
            "rows": c.rows_text(), "metrics": ", ".join(METRIC_NAME[k] for k in c.metrics),
            "verdict": verdict, "comparison": "", "difference": None, "ci_low": None, "ci_high": None,
            "p_holm": None, "parts_holding": "", "seeds": "", "paper": "", "note": note}


READING = (
    "Each claim: its higher rows beat its lower rows on each of its metrics, every (row, row, "
    "metric) one paired bootstrap comparison on the same resampled test dialogues (Table 4: "
    "rated items). **holds**: every comparison goes the claimed way and the weakest is "
    "significant, after Holm's correction across the table's claims, on every seed's runs; "
    "**reversed**: a comparison goes significantly the other way, on every seed's runs; **not "
    "distinguishable**: neither. The comparison shown is the one that decides; \"Comparisons "
    "holding\": those significant the claimed way on their own; \"Paper's numbers\": those the "
    "paper's own table agrees with. How to read it: docs/claims.md.")


def to_markdown(rows: Sequence[Mapping], caption: str, level: float = DEFAULT_LEVEL) -> str:
    pct = round(100 * level)
    head = ("Claim", "§", "The paper says", "Rows", "Metrics", "Verdict", "Deciding comparison",
            f"Difference [{pct}% CI]", "p (Holm)", "Comparisons holding", "Seeds", "Paper's numbers")
    cells = []
    for r in rows:
        diff = (f"{_fmt(r['difference'])} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
                if r["difference"] is not None else r["note"])
        cells.append((r["claim"], r["section"], f"\"{r['statement']}\"", r["rows"], r["metrics"],
                      f"**{r['verdict']}**", r["comparison"], diff,
                      _p(r["p_holm"]) if r["p_holm"] is not None else "", r["parts_holding"],
                      r["seeds"], r["paper"]))
    return "\n".join([caption, "", READING, "", markdown_table(head, cells, "l" * len(head))]) + "\n"


def write_claims(rows: Sequence[Mapping], comparisons: Sequence[Mapping], out_csv: str | os.PathLike,
                 out_md: str | os.PathLike, out_comparisons: str | os.PathLike, caption: str,
                 level: float = DEFAULT_LEVEL) -> None:
    fmt = {k: "{:.4f}" for k in ("difference", "ci_low", "ci_high")}
    write_text_atomic(out_csv, to_csv(CSV_FIELDS, rows, {**fmt, "p_holm": "{:.3g}"}))
    write_text_atomic(out_md, to_markdown(rows, caption, level))
    write_text_atomic(out_comparisons, to_csv(COMPARISON_FIELDS, comparisons, {**fmt, "p": "{:.3g}"}))


def claims_caption(split: str, data_source: str, seeds: Sequence[int], resamples: int,
                   alpha: float, rated: bool) -> str:
    seeds_text = (f"{len(seeds)} training seeds ({', '.join(map(str, seeds))})" if len(seeds) > 1
                  else f"one training seed ({seeds[0]})")
    return (f"The paper's claims (and any added in the config) tested on our runs on "
            f"{split_phrase(split, data_source)}: {seeds_text}, {resamples} bootstrap resamples "
            f"of the dialogues, Holm-corrected at alpha = {alpha}. Table 4 claims: "
            + ("the filled rating sheets, resampled by item." if rated else "no filled rating "
               "sheets yet (config human_eval.ratings_dir)."))


def write_claims_table(claim_files: Sequence[str | os.PathLike], replicates: Replicates,
                       runs_by_baseline: Mapping[str, Sequence[str]], labels: Mapping[str, str],
                       seeds: Sequence[int], out_csv, out_md, out_comparisons, *, split: str,
                       data_source: str, alpha: float = DEFAULT_ALPHA, level: float = DEFAULT_LEVEL,
                       ratings: tuple[str | os.PathLike, str | os.PathLike] | None = None,
                       rated_labels: Mapping[str, str] | None = None) -> list[dict]:
    """The ``claims`` rule: load the claims, evaluate them on Table 3's runs (and the filled
    Table 4 sheets, ``ratings`` = (directory, key)), write the three files; return the rows."""
    claims = load_claims(claim_files)
    table3 = seed_families(replicates, runs_by_baseline, labels, seeds)
    table4 = None
    if ratings is not None:
        scores, criteria = item_scores(*ratings)
        table4 = ratings_replicates(scores, criteria, rated_labels or {}, replicates.resamples,
                                    replicates.seed)
    rows, comparisons = evaluate_claims(claims, table3, table4, alpha, level)
    write_claims(rows, comparisons, out_csv, out_md, out_comparisons,
                 claims_caption(split, data_source, seeds, replicates.resamples, alpha,
                                table4 is not None), level)
    return rows
