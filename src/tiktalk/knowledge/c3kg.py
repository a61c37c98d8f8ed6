"""C3KG as a plain table: read/validate ``c3kg.tsv`` and convert the released gpickle once.

C3KG (XiaoMi/C3KG, CC BY 4.0) is built by ``construct/construct_edge.py`` as a networkx
``DiGraph`` saved with ``nx.write_gpickle``: nodes are Chinese head/tail phrases, every edge
carries ``type`` (the relation) and ``weight`` (a count). A gpickle is a Python pickle, and
unpickling runs arbitrary code; networkx 3 also removed ``read_gpickle``. The pipeline therefore
reads only the plain table of :data:`tiktalk.formats.C3KG_COLUMNS` (head, relation, tail,
weight); :func:`convert_gpickle` turns a trusted gpickle into that table, once, behind an
explicit opt-in.

Relations (C3KG ``construct_edge.py``):

- ATOMIC relations (:data:`ATOMIC_RELATIONS`): knowledge, not dialogue flows;
- dialogue flows (:data:`tiktalk.formats.FLOW_RELATIONS`): event flow ``next_sentence`` /
  ``next_utterance``, concept flow ``next_entity``, emotion flows ``emotion_cause`` and
  ``emotion_intent``; the emotion-intent flow built with intent labels is named
  ``intent_<label>`` (``intent_ask``, ``intent_console``, ...), also an emotion flow.
"""

from __future__ import annotations

import math
import os
import pickle
import re
from pathlib import Path

import pandas as pd

from tiktalk.formats import C3KG_COLUMNS, FLOW_RELATIONS
from tiktalk.io import atomic_path

ATOMIC_RELATIONS = (
    "xNeed", "xAttr", "xReact", "xEffect", "xWant", "xIntent",
    "oEffect", "oWant", "oReact", "isBefore", "isAfter", "HasSubEvent",
)
# Emotion-intent flows labelled with the listener's intent (C3KG construct_edge.py, C2E map).
_INTENT_RE = re.compile(r"^intent_[A-Za-z][A-Za-z_]*$")
_WS_RE = re.compile(r"[\t\r\n\v\f]+")


def is_flow_relation(relation: str) -> bool:
    """True for C3KG dialogue-flow relations (event, concept, emotion; ``intent_*`` included)."""
    return relation in FLOW_RELATIONS or bool(_INTENT_RE.match(relation))


def is_known_relation(relation: str) -> bool:
    return relation in ATOMIC_RELATIONS or is_flow_relation(relation)


def _parse_weight(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def read_c3kg_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read and validate a C3KG table (tab-separated, header = :data:`C3KG_COLUMNS`).

    Returns a DataFrame with str columns head/relation/tail and a float column weight, in
    file order. Any problem raises ValueError naming the file and the 1-based line number:
    wrong header, wrong number of fields, empty head or tail, unknown relation, weight that
    is not a finite number.
    """
    path = Path(path)
    heads: list[str] = []
    relations: list[str] = []
    tails: list[str] = []
    weights: list[float] = []
    with open(path, encoding="utf-8", newline="") as fh:
        header = fh.readline().rstrip("\r\n")
        if not header:
            raise ValueError(f"{path}:1: empty file, expected header {'<TAB>'.join(C3KG_COLUMNS)}")
        if tuple(header.lstrip("\ufeff").split("\t")) != C3KG_COLUMNS:
            raise ValueError(
                f"{path}:1: header {header!r} is not {'<TAB>'.join(C3KG_COLUMNS)!r}"
            )
        for lineno, line in enumerate(fh, 2):
            line = line.rstrip("\r\n")
            if not line:
                continue
            fields = line.split("\t")
            if len(fields) != len(C3KG_COLUMNS):
                raise ValueError(
                    f"{path}:{lineno}: expected {len(C3KG_COLUMNS)} tab-separated fields "
                    f"({', '.join(C3KG_COLUMNS)}), got {len(fields)}"
                )
            head, relation, tail, weight_text = (f.strip() for f in fields)
            if not head:
                raise ValueError(f"{path}:{lineno}: empty head")
            if not tail:
                raise ValueError(f"{path}:{lineno}: empty tail")
            if not is_known_relation(relation):
                raise ValueError(
                    f"{path}:{lineno}: unknown relation {relation!r} (expected one of "
                    f"{', '.join(ATOMIC_RELATIONS + FLOW_RELATIONS)} or intent_<label>)"
                )
            weight = _parse_weight(weight_text)
            if weight is None:
                raise ValueError(f"{path}:{lineno}: weight {weight_text!r} is not a finite number")
            heads.append(head)
            relations.append(relation)
            tails.append(tail)
            weights.append(weight)
    return pd.DataFrame(
        {
            "head": pd.Series(heads, dtype=object),
            "relation": pd.Series(relations, dtype=object),
            "tail": pd.Series(tails, dtype=object),
            "weight": pd.Series(weights, dtype="float64"),
        },
        columns=list(C3KG_COLUMNS),
    )


def _format_weight(weight: float) -> str:
    return str(int(weight)) if float(weight).is_integer() else repr(float(weight))


def _clean_phrase(value: object) -> str:
    return _WS_RE.sub(" ", str(value)).strip()


def write_c3kg_table(rows, out_tsv: str | os.PathLike) -> int:
    """Write (head, relation, tail, weight) rows as a C3KG table, sorted, atomically.

    Rows are sorted by (head, relation, tail, weight) so the file is byte-identical for the
    same graph whatever the graph's insertion order. Returns the number of rows written.
    """
    cleaned = []
    for head, relation, tail, weight in rows:
        cleaned.append((_clean_phrase(head), str(relation), _clean_phrase(tail), float(weight)))
    cleaned.sort()
    with atomic_path(out_tsv) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write("\t".join(C3KG_COLUMNS) + "\n")
        for head, relation, tail, weight in cleaned:
            fh.write(f"{head}\t{relation}\t{tail}\t{_format_weight(weight)}\n")
    return len(cleaned)


def convert_gpickle(
    gpickle_path: str | os.PathLike, out_tsv: str | os.PathLike, allow_pickle: bool = False
) -> dict:
    """Convert C3KG's gpickle (a pickled networkx DiGraph) to the plain C3KG table.

    Unpickling executes code embedded in the file, so this refuses unless ``allow_pickle`` is
    True; only opt in for a file from a source you trust (the official C3KG release). Every
    edge must carry a known ``type`` and a numeric ``weight``; tabs/newlines inside node
    names become spaces. Returns a summary ``{"edges", "flows", "relations": {name: count}}``.
    """
    gpickle_path = Path(gpickle_path)
    if not allow_pickle:
        raise PermissionError(
            f"{gpickle_path}: refusing to load a gpickle: it is a Python pickle, and unpickling "
            "runs arbitrary code from the file (networkx 3 also removed read_gpickle). If you "
            "trust this file (e.g. the official XiaoMi/C3KG release), opt in with "
            "allow_pickle=True (config: knowledge.allow_pickle: true); the pipeline then "
            "reads only the converted plain table."
        )
    import networkx as nx

    with open(gpickle_path, "rb") as fh:
        graph = pickle.load(fh)  # noqa: S301 - explicit opt-in above
    if not isinstance(graph, nx.Graph):
        raise ValueError(
            f"{gpickle_path}: expected a pickled networkx graph, got {type(graph).__name__}"
        )
    if not graph.is_directed():
        raise ValueError(f"{gpickle_path}: expected a directed graph (C3KG is a DiGraph)")
    rows = []
    counts: dict[str, int] = {}
    for head, tail, attrs in graph.edges(data=True):
        relation = attrs.get("type")
        if not isinstance(relation, str) or not is_known_relation(relation):
            raise ValueError(
                f"{gpickle_path}: edge {head!r} -> {tail!r} has unknown or missing type "
                f"{relation!r}"
            )
        weight = attrs.get("weight", None)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
            raise ValueError(
                f"{gpickle_path}: edge {head!r} -> {tail!r} ({relation}) has non-numeric "
                f"weight {weight!r}"
            )
        if not _clean_phrase(head) or not _clean_phrase(tail):
            raise ValueError(f"{gpickle_path}: edge {head!r} -> {tail!r} has an empty node name")
        rows.append((head, relation, tail, weight))
        counts[relation] = counts.get(relation, 0) + 1
    n = write_c3kg_table(rows, out_tsv)
    return {
        "edges": n,
        "flows": sum(c for r, c in counts.items() if is_flow_relation(r)),
        "relations": dict(sorted(counts.items())),
    }
