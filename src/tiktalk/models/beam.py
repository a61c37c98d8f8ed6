"""Decoding shared by the generation models: beam search (greedy = beam 1) and top-k sampling.

Both work over a *step function*::

    step_fn(tokens: LongTensor (N, t), state) -> (scores: FloatTensor (N, V), state)

``tokens`` are the generated prefixes so far (``t`` may be 0 at the first step; they do not
include any model-specific start token), one row per live hypothesis; ``scores`` are the
next-token logits or log-probabilities. ``state`` is anything the model wants to carry (e.g. a
KV cache or the encoded inputs); after each step, rows are re-ordered with ``reorder_state``
(default: ``index_select`` on dim 0 of every tensor inside dicts/lists/tuples; ``None`` stays).

Penalties (as in HF/Maria): the repetition penalty (CTRL) divides a positive score of every
token already in the hypothesis by ``repetition_penalty`` and multiplies a negative one by it,
BEFORE the scores are normalised with log-softmax (so with raw logits it is exactly HF's; with
log-probs, all negative, it multiplies them). The length penalty ranks finished hypotheses by
``sum_logprob / len ** length_penalty`` (``len`` counts generated tokens, EOS included).

Public API::

    beam_search(step_fn, state, batch_size, beam_size, max_len, eos_id, min_len=0,
                length_penalty=1.0, repetition_penalty=1.0, banned_ids=(), reorder_state=None,
                device="cpu") -> list[list[int]]      # best hypothesis per input, EOS stripped
    greedy_search(...)                                 # beam_search with beam_size=1
    sample_top_k(step_fn, state, batch_size, max_len, eos_id, top_k=8, temperature=1.0,
                 generator=None, min_len=0, repetition_penalty=1.0, banned_ids=(),
                 device="cpu") -> list[list[int]]

For ``beam_search`` the initial ``state`` must hold ``batch_size * beam_size`` rows, input ``i``
repeated in rows ``i*beam_size .. (i+1)*beam_size-1`` (use :func:`expand_for_beams`).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch

StepFn = Callable[[torch.Tensor, Any], "tuple[torch.Tensor, Any]"]
NEG_INF = float("-inf")


def reorder(state: Any, index: torch.Tensor) -> Any:
    """index_select(0, index) on every tensor inside ``state`` (dicts, lists, tuples)."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.index_select(0, index.to(state.device))
    if isinstance(state, dict):
        return {k: reorder(v, index) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(reorder(v, index) for v in state)
    return state


def expand_for_beams(state: Any, beam_size: int) -> Any:
    """Repeat every row of every tensor in ``state`` ``beam_size`` times (row-major)."""
    if state is None or beam_size == 1:
        return state
    if isinstance(state, torch.Tensor):
        return state.repeat_interleave(beam_size, dim=0)
    if isinstance(state, dict):
        return {k: expand_for_beams(v, beam_size) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(expand_for_beams(v, beam_size) for v in state)
    return state


def apply_repetition_penalty(scores: torch.Tensor, tokens: torch.Tensor, penalty: float) -> torch.Tensor:
    if penalty == 1.0 or tokens.numel() == 0:
        return scores
    prev = torch.gather(scores, 1, tokens)
    prev = torch.where(prev > 0, prev / penalty, prev * penalty)
    return scores.scatter(1, tokens, prev)


def _prepare_scores(scores, tokens, step, eos_id, min_len, repetition_penalty, banned_ids):
    scores = scores.float()
    scores = apply_repetition_penalty(scores, tokens, repetition_penalty)
    if banned_ids:
        scores[:, list(banned_ids)] = NEG_INF
    if step < min_len:
        scores[:, eos_id] = NEG_INF
    return torch.log_softmax(scores, dim=-1)


@torch.no_grad()
def beam_search(step_fn: StepFn, state: Any, batch_size: int, beam_size: int, max_len: int,
                eos_id: int, min_len: int = 0, length_penalty: float = 1.0,
                repetition_penalty: float = 1.0, banned_ids: Sequence[int] = (),
                reorder_state: Callable[[Any, torch.Tensor], Any] | None = None,
                device: str | torch.device = "cpu") -> list[list[int]]:
    """Best hypothesis (token ids, EOS stripped) for each of ``batch_size`` inputs.

    A hypothesis ends when it emits ``eos_id`` or reaches ``max_len`` tokens (then it is
    finished without EOS). Search for input ``i`` stops once it has ``beam_size`` finished
    hypotheses and no live one can beat the worst of them (HF's ``early_stopping=False``
    heuristic, with the length penalty), or at ``max_len``.
    """
    reorder_state = reorder_state or reorder
    K, B = beam_size, batch_size
    device = torch.device(device)
    tokens = torch.zeros(B * K, 0, dtype=torch.long, device=device)
    # only the first beam of each input is live at the start (the others are copies)
    beam_scores = torch.zeros(B, K, device=device)
    beam_scores[:, 1:] = NEG_INF
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(B)]
    done = [False] * B

    def norm(score: float, length: int) -> float:
        return score / (max(1, length) ** length_penalty)

    for step in range(max_len):
        scores, state = step_fn(tokens, state)
        logp = _prepare_scores(scores, tokens, step, eos_id, min_len, repetition_penalty, banned_ids)
        V = logp.shape[-1]
        cand = (beam_scores.view(B * K, 1) + logp).view(B, K * V)
        top_scores, top_idx = cand.topk(min(2 * K, K * V), dim=1)
        next_rows, next_tokens, next_scores = [], [], []
        for b in range(B):
            chosen = []
            if not done[b]:
                n_new = 0
                for rank, (s, idx) in enumerate(zip(top_scores[b].tolist(), top_idx[b].tolist())):
                    if s == NEG_INF or n_new == K:
                        break
                    k, tok = divmod(idx, V)
                    row = b * K + k
                    if tok == eos_id:
                        if rank < K:  # an EOS outside the top K does not finish a beam (HF)
                            finished[b].append((norm(s, step + 1), tokens[row].tolist()))
                        continue
                    n_new += 1
                    if step == max_len - 1:  # out of length: finished without EOS
                        finished[b].append((norm(s, step + 1), tokens[row].tolist() + [tok]))
                    else:
                        chosen.append((row, tok, s))
                finished[b].sort(key=lambda x: -x[0])
                del finished[b][K:]
                if not chosen:
                    done[b] = True
                elif len(finished[b]) >= K:
                    best_live = max(c[2] for c in chosen)
                    if norm(best_live, step + 1) <= finished[b][-1][0]:
                        done[b] = True
            while len(chosen) < K:  # pad with dead rows
                chosen.append((b * K, 0, NEG_INF))
            for row, tok, s in chosen:
                next_rows.append(row)
                next_tokens.append(tok)
                next_scores.append(s)
        if all(done):
            break
        rows = torch.tensor(next_rows, device=device)
        tokens = torch.cat([tokens.index_select(0, rows),
                            torch.tensor(next_tokens, device=device).view(-1, 1)], dim=1)
        beam_scores = torch.tensor(next_scores, device=device).view(B, K)
        state = reorder_state(state, rows)

    out = []
    for b in range(B):
        if finished[b]:
            out.append(max(finished[b], key=lambda x: x[0])[1])
        else:  # never finished (max_len 0): best live beam
            out.append(tokens[b * K].tolist())
    return out


def greedy_search(step_fn: StepFn, state: Any, batch_size: int, max_len: int, eos_id: int,
                  **kwargs) -> list[list[int]]:
    return beam_search(step_fn, state, batch_size, 1, max_len, eos_id, **kwargs)


@torch.no_grad()
def sample_top_k(step_fn: StepFn, state: Any, batch_size: int, max_len: int, eos_id: int,
                 top_k: int = 8, temperature: float = 1.0, generator: torch.Generator | None = None,
                 min_len: int = 0, repetition_penalty: float = 1.0, banned_ids: Sequence[int] = (),
                 device: str | torch.device = "cpu") -> list[list[int]]:
    """Top-k sampling (GPT2-chitchat: k=8), one sequence per input; seeded via ``generator``.

    ``generator`` must live on ``device`` (a CPU generator for CPU decoding). Finished rows keep
    being fed (their outputs are ignored) so the batch stays rectangular.
    """
    device = torch.device(device)
    tokens = torch.zeros(batch_size, 0, dtype=torch.long, device=device)
    alive = torch.ones(batch_size, dtype=torch.bool, device=device)
    lengths = torch.full((batch_size,), max_len, dtype=torch.long)
    for step in range(max_len):
        scores, state = step_fn(tokens, state)
        logp = _prepare_scores(scores, tokens, step, eos_id, min_len, repetition_penalty, banned_ids)
        logp = logp / max(temperature, 1e-6)
        k = min(top_k, logp.shape[-1])
        vals, idx = logp.topk(k, dim=-1)
        probs = torch.softmax(vals, dim=-1)
        pick = torch.multinomial(probs, 1, generator=generator)
        nxt = idx.gather(1, pick).squeeze(1)
        nxt = torch.where(alive, nxt, torch.full_like(nxt, eos_id))
        for i in torch.nonzero(alive & (nxt == eos_id)).flatten().tolist():
            lengths[i] = step
        alive = alive & (nxt != eos_id)
        tokens = torch.cat([tokens, nxt.view(-1, 1)], dim=1)
        if not alive.any():
            break
    return [tokens[i, : int(lengths[i])].tolist() for i in range(batch_size)]
