"""Log-likelihood of a given response under a trained model (the ranking evaluation).

Each returns, per row, the SUM of the log-probabilities of the response's tokens (its end
token included: [SEP] / eos, so a model is also judged on where the response stops) and the
NUMBER of those tokens; :func:`tiktalk.metrics.ranking.candidate_scores` turns them into the
ranking score. Scores come from the model's own distribution (softmax of its logits): no
decoding-time penalties (repetition, banned tokens, length penalty) are applied.

* :func:`token_logprob_sums`: teacher-forced causal LM (GPT-2 chitchat, the causal LM, BLIP-2's
  LLM, Livebot's decoder): ``logits[:, i]`` predicts ``labels[:, i + 1]``; positions labelled
  -100 (prompt, padding) are not scored.
* :func:`maria_response_logprobs`: Maria's UniLM. Decoding produces response token t at a
  [MASK] placed after ``[CLS] y_1 .. y_{t-1}``; scoring all tokens of a response in ONE encoder
  pass appends, after the normal sequence, one [MASK] slot per response position j
  (position id j, token type "response") that attends to the non-response inputs, to the real
  response tokens before j and to itself, while no original position attends to any slot. Every
  original position then computes exactly what it computes during decoding (the UniLM mask
  keeps the response causal and the inputs blind to it), and slot j sees exactly what the
  [MASK] at j sees at decoding step j: the result equals stepwise decoding's log-probabilities
  (tests compare the two) at the cost of one pass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

IGNORE = -100


def token_logprob_sums(logits: torch.Tensor, labels: torch.Tensor, shift: bool = True
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of log p(label), number of labels) per row; ``shift``: causal LM alignment
    (``logits[:, i]`` predicts ``labels[:, i+1]``), else position-wise. The softmax is taken
    at the labelled positions only."""
    if shift:
        logits, labels = logits[:, :-1], labels[:, 1:]
    mask = labels != IGNORE
    return _gold_sums(logits[mask], labels, mask)


def _gold_sums(scored_logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: the summed log-probabilities of ``labels[mask]`` under ``scored_logits`` (one
    row of logits per True of ``mask``, in row-major order), and the number of them."""
    logp = F.log_softmax(scored_logits.float(), dim=-1)
    gold = logp.gather(-1, labels[mask].unsqueeze(-1)).squeeze(-1)
    rows = torch.arange(labels.shape[0], device=labels.device).unsqueeze(1).expand_as(labels)[mask]
    sums = torch.zeros(labels.shape[0], dtype=gold.dtype, device=gold.device).index_add_(0, rows, gold)
    return sums, mask.sum(1)


class _HeadCapture(torch.nn.Module):
    """Stands in for an LM's output layer during one forward pass: records the final hidden
    states and returns a width-1 placeholder, so no (batch, length, vocabulary) logits are
    built."""

    def __init__(self, head: torch.nn.Module):
        super().__init__()
        self.head = head
        self.hidden: torch.Tensor | None = None

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        self.hidden = hidden
        return hidden.new_zeros(*hidden.shape[:-1], 1)


def lm_logprob_sums(lm, run, labels: torch.Tensor, offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`token_logprob_sums` of a causal LM's forward pass ``run()`` (which calls ``lm``
    on a sequence of ``offset`` positions before the ``labels``' ones, e.g. BLIP-2's queries),
    with the output layer applied only where a label is scored: ranking 100 candidates a
    dialogue costs a response's positions x the vocabulary, not the whole sequence's.

    Needs ``lm.get_output_embeddings`` / ``set_output_embeddings`` (transformers models and
    ChatGLM-6B's remote code have them); otherwise, or when the hidden states' layout cannot be
    told apart (batch size = length), the full logits are computed as before."""
    head = lm.get_output_embeddings() if hasattr(lm, "get_output_embeddings") else None
    if head is None or not hasattr(lm, "set_output_embeddings"):
        return token_logprob_sums(_full_logits(run(), offset), labels)
    capture = _HeadCapture(head)
    lm.set_output_embeddings(capture)
    try:
        run()
    finally:
        lm.set_output_embeddings(head)
    h = capture.hidden
    b, length = labels.shape[0], labels.shape[1] + offset
    if h is None or h.ndim != 3 or b == length:
        return token_logprob_sums(_full_logits(run(), offset), labels)
    if tuple(h.shape[:2]) == (length, b):           # sequence-first layout (ChatGLM-6B)
        h = h.transpose(0, 1)
    elif tuple(h.shape[:2]) != (b, length):
        raise ValueError(f"hidden states of shape {tuple(h.shape)} for {b} rows of {length} positions")
    h, shifted = h[:, offset:-1], labels[:, 1:]
    mask = shifted != IGNORE
    return _gold_sums(head(h[mask]), shifted, mask)


def _full_logits(out, offset: int) -> torch.Tensor:
    logits = out.logits if hasattr(out, "logits") else out[0]
    return logits[:, offset:]


@torch.no_grad()
def maria_response_logprobs(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of log p, number of tokens) of each row's response under a Maria model.

    ``batch``: :func:`tiktalk.models.maria.collate` of examples built WITH their response (the
    candidate): response slots ``[CLS] y_1 .. y_n [SEP]``. Scored tokens: ``y_1 .. y_n, [SEP]``.
    """
    cfg = model.cfg
    R = cfg.max_response_len
    ids = batch["input_ids"]
    B = ids.shape[0]
    x, valid, is_resp = model._embed(batch)
    L = x.shape[1]
    device = ids.device
    emb = model.mlm.bert.embeddings
    slot_pos = torch.arange(R, device=device).unsqueeze(0).expand(B, R)
    slots = emb(input_ids=torch.full((B, R), cfg.mask_token_id, dtype=torch.long, device=device),
                token_type_ids=torch.zeros(B, R, dtype=torch.long, device=device),
                position_ids=slot_pos)
    # response length n + 2 ([CLS] .. [SEP]) from the response slots' validity
    resp_len = batch["text_mask"][:, :R].sum(1)                     # (B,)
    scored = (slot_pos >= 1) & (slot_pos < resp_len.unsqueeze(1))  # slots 1 .. n+1
    base = model.unilm_mask(valid, is_resp)                          # (B, L, L)
    allowed = torch.zeros(B, L + R, L + R, dtype=torch.bool, device=device)
    allowed[:, :L, :L] = base
    j = torch.arange(R, device=device)
    # slot j -> non-response valid inputs, real response positions < j, itself
    to_inputs = (valid & ~is_resp.unsqueeze(0)).unsqueeze(1).expand(B, R, L)
    to_resp = (j.view(R, 1) > torch.arange(L, device=device).view(1, L)) & is_resp.view(1, L)
    allowed[:, L:, :L] = to_inputs | (to_resp.unsqueeze(0) & valid.unsqueeze(1))
    allowed[:, L:, L:] = torch.eye(R, dtype=torch.bool, device=device).unsqueeze(0) & scored.unsqueeze(1)
    # an unscored slot attends to itself only (keeps its softmax defined; its output is unused)
    allowed[:, L:, L:] |= torch.eye(R, dtype=torch.bool, device=device).unsqueeze(0)
    h = torch.cat([x, slots.to(x.dtype)], dim=1)
    add = torch.zeros(allowed.shape, dtype=h.dtype, device=device)
    add = add.masked_fill(~allowed, torch.finfo(h.dtype).min).unsqueeze(1)
    out = model.mlm.bert.encoder(h, attention_mask=add)
    hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
    labels = torch.where(scored, ids[:, :R], torch.full_like(ids[:, :R], IGNORE))
    return _gold_sums(model.mlm.cls(hidden[:, L:][scored]), labels, scored)   # scored slots only


def candidate_pairs(rows, candidates: dict) -> list[tuple[dict, str]]:
    """(dialogue row, candidate text) for every candidate of a candidate file
    (:func:`tiktalk.metrics.ranking.read_candidates`), dialogue after dialogue in the file's
    order; ``rows``: the split's dialogue table. A dialogue missing from it is an error."""
    by_id = {r["dialogue_id"]: r for r in rows}
    missing = [d["dialogue_id"] for d in candidates["dialogues"] if d["dialogue_id"] not in by_id]
    if missing:
        raise KeyError(f"{len(missing)} dialogue(s) of the candidate file are not in the split's "
                       f"dialogue table, e.g. {missing[:3]}")
    return [(by_id[d["dialogue_id"]], text) for d in candidates["dialogues"] for text in d["candidates"]]


def as_matrix(sums: list[torch.Tensor], counts: list[torch.Tensor], n_candidates: int):
    """Per-batch results concatenated into (dialogues, candidates) numpy arrays
    (summed log-likelihood as float64, token counts as int64)."""
    s = torch.cat([t.detach().double().cpu() for t in sums]).numpy()
    n = torch.cat([t.detach().long().cpu() for t in counts]).numpy()
    if s.size % n_candidates:
        raise ValueError(f"{s.size} scores are not a whole number of {n_candidates}-candidate sets")
    return s.reshape(-1, n_candidates), n.reshape(-1, n_candidates)
