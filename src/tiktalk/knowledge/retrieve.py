"""Retrieve C3KG dialogue flows for each dialogue (paper sec. 4.2, Maria+C3KG).

The paper encodes the dialogue context with Sentence-BERT, retrieves the heads of C3KG
dialogue flows most similar to it, and feeds the corresponding flows to the model as
knowledge. Here a retriever scores a context against every DISTINCT flow head of the table
(only flow relations, see :func:`tiktalk.knowledge.c3kg.is_flow_relation`; ATOMIC relations are
not flows), ranks heads by score, and expands each head into its flows, heaviest first, until
``top_k`` flows are collected.

Two scorers:

- :class:`CharTfidfRetriever`: embedded, numpy only; character 1-2-gram TF-IDF (IDF fitted on
  the heads, smoothed as ``ln((1+N)/(1+df)) + 1``), L2-normalised, cosine similarity. The
  demo default.
- :class:`SentenceBertRetriever`: a sentence-transformers model named in the config (a Chinese
  Sentence-BERT for the real run); cosine over normalised embeddings, heads encoded once.

A dialogue gets at most ``top_k`` flows; fewer when ``min_score`` cuts, or (TF-IDF) when
fewer heads share any character with the context. Ordering is deterministic: heads by (score rounded to 1e-6, descending; head, ascending), a
head's flows by (weight descending, relation, tail).

Retriever config (``knowledge.retriever`` in the workflow config)::

    kind: char_tfidf | sbert   # which scorer
    top_k: 5                   # flows per dialogue
    per_head: null             # at most this many flows per head (null: no limit)
    min_score: null            # drop heads scoring below this (null: keep all)
    context_turns: null        # use only the last N context turns (null: all)
    # sbert only:
    model: <name or path>      # sentence-transformers model (required)
    batch_size: 64
    device: null               # e.g. "cuda", "cpu"; null lets sentence-transformers choose
    max_seq_length: null       # override the model's maximum sequence length
"""

from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from tiktalk.data.dialogues import read_dialogues
from tiktalk.io import provenance, write_json
from tiktalk.knowledge.c3kg import is_flow_relation, read_c3kg_table
from tiktalk.knowledge.flows import write_knowledge
from tiktalk.logs import batch_starts

CONTEXT_SEP = " "
_SCORE_DECIMALS = 6


def context_text(turns: Sequence[str], last_n: int | None = None) -> str:
    """The retrieval query of a dialogue: its context turns (optionally the last N) joined."""
    turns = [str(t).strip() for t in turns]
    if last_n is not None:
        turns = turns[-last_n:] if last_n > 0 else []
    return CONTEXT_SEP.join(t for t in turns if t)


@dataclass(frozen=True)
class _FlowIndex:
    heads: list[str]                    # distinct flow heads, sorted
    flows: list[list[tuple[str, str, float]]]  # per head: (relation, tail, weight), best first


def _build_flow_index(table: pd.DataFrame) -> _FlowIndex:
    is_flow = table["relation"].map(is_flow_relation).astype(bool)
    flows = table.loc[is_flow]
    if flows.empty:
        raise ValueError("the C3KG table has no dialogue-flow relations to retrieve")
    per_head: dict[str, list[tuple[str, str, float]]] = {}
    for head, relation, tail, weight in zip(
        flows["head"], flows["relation"], flows["tail"], flows["weight"]
    ):
        per_head.setdefault(head, []).append((relation, tail, float(weight)))
    heads = sorted(per_head)
    return _FlowIndex(
        heads=heads,
        flows=[sorted(per_head[h], key=lambda f: (-f[2], f[0], f[1])) for h in heads],
    )


def _candidate_heads(scores: np.ndarray, k: int) -> list[np.ndarray]:
    """Per row of a (contexts, heads) score matrix, the heads that can be among its top ``k``
    once scores are rounded to 1e-6: those within 2e-6 of the row's k-th best raw score (at
    least k heads score >= that value, so a selected head's rounded score is at least its
    rounded value, and rounding moves a score by at most 5e-7). One batched top-k instead of a
    sort of every head for every context: ~250,000 C3KG flow heads x 367,670 dialogues."""
    import torch

    n = scores.shape[1] if scores.ndim == 2 else 0
    if not len(scores) or k <= 0 or n == 0:
        return [np.zeros(0, np.int64) for _ in range(len(scores))]
    kth = torch.topk(torch.from_numpy(np.ascontiguousarray(scores)), min(k, n), dim=1).values[:, -1].numpy()
    rows, cols = np.nonzero(scores >= (kth.astype(np.float64) - 2 * 10.0 ** -_SCORE_DECIMALS)[:, None])
    return np.split(cols, np.searchsorted(rows, np.arange(1, len(scores))))


def _top_indices(scores: np.ndarray, k: int, order_keys: np.ndarray | None = None) -> np.ndarray:
    """Indices of the k best scores: score descending, then index ascending (ties); with
    ``order_keys`` (e.g. the heads' own indices of a candidate subset), ties by those keys."""
    if order_keys is not None:
        order = np.lexsort((order_keys, -scores))
        return order[:min(k, len(order))]
    n = scores.shape[0]
    k = min(k, n)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    if k < n:
        kth = np.partition(scores, n - k)[n - k]
        above = np.flatnonzero(scores > kth)
        at = np.flatnonzero(scores == kth)[: k - above.size]
        cand = np.concatenate([above, at])
    else:
        cand = np.arange(n)
    order = np.lexsort((cand, -scores[cand]))
    return cand[order][:k]


class FlowRetriever(ABC):
    """Base class: fit on a C3KG table, then :meth:`retrieve` top-k flows for contexts."""

    # a scorer whose zero means "nothing in common" (TF-IDF) never returns such heads
    _positive_only = False

    def __init__(self, top_k: int = 5, per_head: int | None = None, min_score: float | None = None):
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        if per_head is not None and per_head < 1:
            raise ValueError(f"per_head must be >= 1 or None, got {per_head}")
        self.top_k = int(top_k)
        self.per_head = per_head
        self.min_score = min_score
        self._index: _FlowIndex | None = None

    def provenance(self) -> dict:
        """The weights this retriever loaded (:func:`tiktalk.io.provenance`): none by default."""
        return provenance([])

    @property
    def heads(self) -> list[str]:
        self._check_fitted()
        return self._index.heads

    def fit(self, table: pd.DataFrame) -> "FlowRetriever":
        """Index the distinct flow heads of a C3KG table (as read by ``read_c3kg_table``)."""
        self._index = _build_flow_index(table)
        self._fit_heads(self._index.heads)
        return self

    def _check_fitted(self) -> None:
        if self._index is None:
            raise RuntimeError(f"{type(self).__name__}: call fit(table) before retrieve()")

    @abstractmethod
    def _fit_heads(self, heads: list[str]) -> None: ...

    @abstractmethod
    def score(self, contexts: Sequence[str]) -> np.ndarray:
        """(len(contexts), n_heads) similarity matrix, heads in :attr:`heads` order."""

    @property
    def batch_size(self) -> int:
        # contexts scored at once: the score matrix is batch_size x n_heads
        return 32

    def _flows_for(self, scores: np.ndarray, candidates: np.ndarray | None = None) -> list[dict]:
        """The top_k flows of one context's head scores; ``candidates``: the only heads that can
        be among its top_k (:func:`_candidate_heads`), so that only they are rounded and ranked."""
        index = self._index
        if candidates is None:
            candidates = np.arange(scores.shape[0])
        rounded = np.round(scores[candidates].astype(np.float64), _SCORE_DECIMALS)
        out: list[dict] = []
        # every head has >= 1 flow, so top_k heads always suffice to fill top_k flows
        for j in _top_indices(rounded, self.top_k, candidates):
            s = float(rounded[j])
            h = candidates[j]
            if self.min_score is not None and s < self.min_score:
                break
            if self._positive_only and s <= 0.0:
                break
            flows = index.flows[h] if self.per_head is None else index.flows[h][: self.per_head]
            for relation, tail, _weight in flows:
                out.append({"head": index.heads[h], "relation": relation, "tail": tail, "score": s})
                if len(out) == self.top_k:
                    return out
        return out

    def retrieve(self, contexts: Sequence[str]) -> list[list[dict]]:
        """Top-k flows ``{"head", "relation", "tail", "score"}`` per context, best first."""
        return list(self.retrieve_iter(contexts, progress=False))

    def retrieve_iter(self, contexts: Sequence[str], progress: bool = True):
        """Like :meth:`retrieve`, batch by batch; with ``progress``, the loop's progress goes
        to the log (:func:`tiktalk.logs.progress`: the job's log file, at a bounded rate)."""
        self._check_fitted()
        for start in batch_starts(len(contexts), self.batch_size,
                                  f"retrieve ({type(self).__name__})", logged=progress):
            scores = self.score(contexts[start:start + self.batch_size])
            for row, candidates in zip(scores, _candidate_heads(scores, self.top_k)):
                yield self._flows_for(row, candidates)


# --------------------------------------------------------------------- char TF-IDF


def char_ngrams(text: str, ngram_range: tuple[int, int] = (1, 2)) -> Iterable[str]:
    """Character n-grams of ``text``; whitespace separates segments and is never inside one."""
    lo, hi = ngram_range
    for segment in text.split():
        for n in range(lo, hi + 1):
            for i in range(len(segment) - n + 1):
                yield segment[i:i + n]


class CharTfidfRetriever(FlowRetriever):
    """Character n-gram (1-2) TF-IDF with cosine similarity, numpy only (the demo default).

    Heads are stored as an inverted index (CSR by term), so scoring a context touches only the
    heads sharing an n-gram with it. Heads sharing no n-gram with the context (score 0) are
    never returned, so a dialogue may get fewer than ``top_k`` flows (or none).
    """

    _positive_only = True

    def __init__(self, top_k: int = 5, per_head: int | None = None,
                 min_score: float | None = None, ngram_range: tuple[int, int] = (1, 2)):
        super().__init__(top_k=top_k, per_head=per_head, min_score=min_score)
        lo, hi = ngram_range
        if not 1 <= lo <= hi:
            raise ValueError(f"ngram_range must satisfy 1 <= lo <= hi, got {ngram_range}")
        self.ngram_range = (int(lo), int(hi))

    def _fit_heads(self, heads: list[str]) -> None:
        vocab: dict[str, int] = {}
        rows, cols, counts = [], [], []
        for i, head in enumerate(heads):
            for term, c in sorted(Counter(char_ngrams(head, self.ngram_range)).items()):
                rows.append(i)
                cols.append(vocab.setdefault(term, len(vocab)))
                counts.append(c)
        n_heads = len(heads)
        rows_a = np.asarray(rows, dtype=np.int64)
        cols_a = np.asarray(cols, dtype=np.int64)
        tf = np.asarray(counts, dtype=np.float64)
        df = np.bincount(cols_a, minlength=len(vocab)).astype(np.float64)
        idf = np.log((1.0 + n_heads) / (1.0 + df)) + 1.0
        w = tf * idf[cols_a]
        norms = np.sqrt(np.bincount(rows_a, weights=w * w, minlength=n_heads))
        w = w / np.where(norms > 0, norms, 1.0)[rows_a]
        order = np.lexsort((rows_a, cols_a))  # by term, then head
        self._vocab = vocab
        self._idf = idf
        self._post_heads = rows_a[order]
        self._post_weights = w[order]
        self._post_ptr = np.concatenate([[0], np.cumsum(np.bincount(cols_a, minlength=len(vocab)))])
        self._n_heads = n_heads

    def _query(self, context: str) -> tuple[np.ndarray, np.ndarray]:
        counts = Counter(t for t in char_ngrams(context, self.ngram_range) if t in self._vocab)
        if not counts:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        terms = np.asarray([self._vocab[t] for t in sorted(counts)], dtype=np.int64)
        w = np.asarray([counts[t] for t in sorted(counts)], dtype=np.float64) * self._idf[terms]
        return terms, w / np.linalg.norm(w)

    def score(self, contexts: Sequence[str]) -> np.ndarray:
        self._check_fitted()
        out = np.zeros((len(contexts), self._n_heads), dtype=np.float64)
        for r, context in enumerate(contexts):
            terms, qw = self._query(context)
            row = out[r]
            for t, q in zip(terms, qw):
                lo, hi = self._post_ptr[t], self._post_ptr[t + 1]
                row[self._post_heads[lo:hi]] += q * self._post_weights[lo:hi]  # heads unique per term
        return out


# --------------------------------------------------------------------- Sentence-BERT


class SentenceBertRetriever(FlowRetriever):
    """Sentence-BERT (sentence-transformers) cosine similarity between context and heads.

    ``model_name_or_path``: a sentence-transformers model directory or hub name (for the real
    run a Chinese Sentence-BERT named in the config), or an already built
    ``SentenceTransformer``. Head embeddings are computed once per :meth:`fit` (and, with
    ``cache_dir``, reused across runs: the cache file name hashes the model and the heads).
    """

    def __init__(self, model_name_or_path, batch_size: int = 64, device: str | None = None,
                 top_k: int = 5, per_head: int | None = None, min_score: float | None = None,
                 max_seq_length: int | None = None, cache_dir: str | os.PathLike | None = None):
        super().__init__(top_k=top_k, per_head=per_head, min_score=min_score)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        from sentence_transformers import SentenceTransformer

        self._loaded_from = None        # the directory (or hub name) the model was read from
        if isinstance(model_name_or_path, SentenceTransformer):
            self.model = model_name_or_path
            self.model_name = type(model_name_or_path).__name__
            if device is not None:
                self.model.to(device)
        else:
            self.model_name = str(model_name_or_path)
            self.model = SentenceTransformer(self.model_name, device=device)
            self._loaded_from = self.model_name
        if max_seq_length is not None:
            self.model.max_seq_length = int(max_seq_length)
        self.model.eval()
        self._batch_size = int(batch_size)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._head_emb = None

    def provenance(self) -> dict:
        """The model directory's fingerprint (none for a model handed in already built)."""
        return provenance([self._loaded_from])

    @property
    def batch_size(self) -> int:
        return self._batch_size

    def _encode(self, texts: Sequence[str]):
        import torch

        with torch.inference_mode():
            return self.model.encode(
                list(texts), batch_size=self._batch_size, convert_to_tensor=True,
                normalize_embeddings=True, show_progress_bar=False,
            ).float()

    def _encode_heads(self, heads: list[str]):
        """Every head's embedding, in chunks of 16 batches whose progress goes to the log."""
        import torch

        step = self._batch_size * 16
        if len(heads) <= step:
            return self._encode(heads)
        return torch.cat([self._encode(heads[i:i + step])
                          for i in batch_starts(len(heads), step, "encode C3KG flow heads")])

    def _fit_heads(self, heads: list[str]) -> None:
        import torch

        cache = None
        if self.cache_dir is not None:
            digest = hashlib.sha256(
                (self.model_name + "\0" + str(self.model.max_seq_length) + "\0" + "\n".join(heads)).encode()
            ).hexdigest()[:20]
            cache = self.cache_dir / f"c3kg_heads_{digest}.npy"
            if cache.exists():
                emb = np.load(cache, allow_pickle=False)
                if emb.shape[0] == len(heads):
                    self._head_emb = torch.from_numpy(emb).to(self.model.device)
                    return
        emb = self._encode_heads(heads)
        self._head_emb = emb
        if cache is not None:
            from tiktalk.io import atomic_path

            with atomic_path(cache) as tmp, open(tmp, "wb") as fh:
                np.save(fh, emb.cpu().numpy(), allow_pickle=False)

    def score(self, contexts: Sequence[str]) -> np.ndarray:
        self._check_fitted()
        if len(contexts) == 0:
            return np.zeros((0, len(self._index.heads)))
        q = self._encode(contexts)
        return (q @ self._head_emb.T).cpu().numpy()  # float32: batch_size x n_heads


# --------------------------------------------------------------------- config + split


RETRIEVER_KINDS = ("char_tfidf", "sbert")
_COMMON_KEYS = {"kind", "top_k", "per_head", "min_score", "context_turns"}
_KIND_KEYS = {
    "char_tfidf": {"ngram_range"},
    "sbert": {"model", "batch_size", "device", "max_seq_length", "cache_dir"},
}


def make_retriever(cfg: dict) -> FlowRetriever:
    """Build an (unfitted) retriever from a config dict (keys: see the module docstring)."""
    cfg = dict(cfg)
    kind = cfg.get("kind", "char_tfidf")
    if kind not in RETRIEVER_KINDS:
        raise ValueError(f"retriever kind {kind!r} is not one of {', '.join(RETRIEVER_KINDS)}")
    unknown = set(cfg) - _COMMON_KEYS - _KIND_KEYS[kind]
    if unknown:
        raise ValueError(f"retriever ({kind}): unknown config keys {sorted(unknown)}")
    common = dict(top_k=int(cfg.get("top_k", 5)), per_head=cfg.get("per_head"),
                  min_score=cfg.get("min_score"))
    if kind == "char_tfidf":
        return CharTfidfRetriever(ngram_range=tuple(cfg.get("ngram_range", (1, 2))), **common)
    if not cfg.get("model"):
        raise ValueError("retriever (sbert): 'model' (a sentence-transformers name or path) is required")
    return SentenceBertRetriever(
        cfg["model"], batch_size=int(cfg.get("batch_size", 64)), device=cfg.get("device"),
        max_seq_length=cfg.get("max_seq_length"), cache_dir=cfg.get("cache_dir"), **common,
    )


def retrieve_split(dialogues_path: str | os.PathLike, c3kg_path: str | os.PathLike,
                   out_path: str | os.PathLike, retriever_cfg: dict,
                   retriever: FlowRetriever | None = None, progress: bool = True,
                   provenance_path: str | os.PathLike | None = None) -> int:
    """Write the Knowledge jsonl of one split (formats "Knowledge"), in the dialogue table's order.

    ``retriever`` may be a retriever already fitted on ``c3kg_path`` (to share head
    embeddings between splits); otherwise one is built from ``retriever_cfg`` and fitted.
    With ``provenance_path``, also writes there the fingerprint of the model the retriever
    loaded (:func:`tiktalk.io.provenance`; no weights for TF-IDF). Returns the number of
    dialogues written.
    """
    rows = read_dialogues(dialogues_path)
    last_n = retriever_cfg.get("context_turns")
    contexts = [context_text(r["context"], last_n) for r in rows]
    if retriever is None:
        retriever = make_retriever(retriever_cfg).fit(read_c3kg_table(c3kg_path))
    flows = retriever.retrieve_iter(contexts, progress=progress)
    n = write_knowledge(out_path, [r["dialogue_id"] for r in rows], flows)
    if provenance_path is not None:
        write_json(provenance_path, retriever.provenance())
    return n
