"""Maria (jokieleung/Maria) for TikTalk: a UniLM on a BERT encoder, plus audio and C3KG knowledge.

One model, six Table 3 rows: ``use_visual`` / ``use_audio`` / ``use_knowledge`` switch the
segments on (Maria = V+T, Maria+Audio = V+T+A, Maria+C3KG = V+T+K, and the text, Audio+text,
C3KG+text ablations).

Input sequence (one row)::

    [CLS] response [SEP] <pad...>    max_response_len slots            type 0  (response)
    ctx_1 [SEP] ctx_2 [SEP] ... [SEP]                                 type 1  (context)
    [KNOW] head rel tail [KNOW] ... [SEP]                             type 2  (knowledge)
    <pad...>                          text total <= max_text_len
    v_1 ... v_F   Linear(visual_dim -> hidden) + own positions        type 3  (visual)
    a_1 ... a_A   Linear(audio_dim -> hidden) + own positions         type 4  (audio)

Context is truncated from its oldest side; knowledge gets at most ``max_knowledge_len`` tokens
(whole flows, best first; at most half the non-response slots, so the context always fits).
Visual/audio features are standardised per dimension with training-set statistics.
Text positions are BERT's (0..); the feature segments use their own learned position embeddings.
BERT's token-type table is extended to 5 rows (new rows initialised from row 1).

UniLM seq2seq mask: context/knowledge/visual/audio attend among themselves (bidirectionally),
never to the response; response position i attends to everything non-response plus response
positions <= i. Padding (and an empty modality: failed video, no audio stream) is never attended.

Objectives (paper sec. 4.2): MRP masks response tokens (including the closing [SEP], so the
model learns to stop) with p=0.7, at least one per row; MCP masks context tokens with p=0.15;
MKP masks knowledge tokens with p=0.15 (only when use_knowledge). BERT's 80/10/10 replacement.
The loss is the mean cross-entropy over all masked positions. Masking happens inside
``forward`` from torch's global RNG (checkpointed by the trainer, so resumes are exact).

Decoding (UniLM): to produce token t the response slots hold ``[CLS] y_1 .. y_{t-1} [MASK]``
and the prediction at the [MASK] is taken; beam search (:mod:`tiktalk.models.beam`) with
Maria's beam 5, length penalty 0.3, repetition penalty 3, max 40 tokens. The encoder is
re-run over the whole sequence at every step (no KV cache): cost O(max_len) encoder passes per
batch of ``batch * beam`` rows; fine for the demo, the paper-size test set is ~20x costlier
than with a cache.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import torch
from torch import nn
import torch.nn.functional as F

from tiktalk.models.beam import beam_search, expand_for_beams
from tiktalk.models.features import FeatureStandardizer

TYPE_RESPONSE, TYPE_CONTEXT, TYPE_KNOWLEDGE, TYPE_VISUAL, TYPE_AUDIO = 0, 1, 2, 3, 4
N_TYPES = 5


@dataclass(frozen=True)
class MariaDecode:
    """Decoding settings (a Maria baseline's ``decode:`` block): beam search with Maria's
    length and repetition penalties; they may change between training and decoding."""

    batch_size: int = 16
    beam_size: int = 5
    length_penalty: float = 0.3
    repetition_penalty: float = 3.0
    max_len: int = 40                  # capped at max_response_len - 2 tokens (+ [SEP])
    min_len: int = 1


@dataclass(frozen=True)
class MariaConfig:
    """Everything that defines one Maria model; immutable.

    Built once, by the adapter (:mod:`tiktalk.baselines.maria`), from the baseline's ``model:``
    block plus what it derives: the vocabulary and special-token ids
    (:func:`tokenizer_fields`), the feature dimensions of the shards, and the encoder's
    architecture (:func:`build_backbone` returns the config completed with ``bert_config``).
    """

    # --- backbone (its initialisation is the baseline's ``init``: build_backbone) ---
    vocab_size: int = 21128            # len(tokenizer): see tokenizer_fields
    hidden_size: int = 768             # scratch only (pretrained: taken from its config)
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    initializer_range: float = 0.02    # scratch only: std of every random matrix (BERT: 0.02)
    # --- inputs ---
    use_visual: bool = True
    use_audio: bool = False
    use_knowledge: bool = False
    max_response_len: int = 40         # response slots incl. [CLS] and [SEP] (Maria: 40)
    max_text_len: int = 180            # all text slots incl. the response (TikTalk: 180)
    max_knowledge_len: int = 60        # knowledge budget inside max_text_len
    max_flows: int = 5                 # knowledge flows kept per dialogue (best first)
    max_frames: int = 50               # paper: 50 frames for vision and audio
    max_audio_frames: int = 50
    visual_dim: int = 2048             # ResNet-101 pooled
    audio_dim: int = 128               # VGGish
    # --- objectives ---
    mask_prob_response: float = 0.7    # MRP
    mask_prob_context: float = 0.15    # MCP
    mask_prob_knowledge: float = 0.15  # MKP
    # --- special token ids (from the tokenizer: tokenizer_fields) ---
    pad_token_id: int = 0
    cls_token_id: int = 101
    sep_token_id: int = 102
    mask_token_id: int = 103
    unk_token_id: int = 100
    know_token_id: int | None = None
    banned_token_ids: tuple[int, ...] = ()  # never generated (specials)
    bert_config: dict | None = None    # the encoder's full BertConfig (from build_backbone)

    def __post_init__(self) -> None:
        if self.max_response_len < 3:
            raise ValueError("max_response_len must leave room for [CLS], a token and [SEP]")
        if self.max_text_len <= self.max_response_len:
            raise ValueError("max_text_len must exceed max_response_len (room for the context)")
        room = self.max_text_len - self.max_response_len
        if self.use_knowledge and not 2 <= self.max_knowledge_len <= room // 2:
            raise ValueError(
                f"max_knowledge_len {self.max_knowledge_len} must be in [2, {room // 2}]: at most "
                f"half of the {room} context+knowledge slots (max_text_len {self.max_text_len} - "
                f"max_response_len {self.max_response_len}), so the dialogue context is kept")
        for p in ("mask_prob_response", "mask_prob_context", "mask_prob_knowledge"):
            if not 0.0 <= getattr(self, p) <= 1.0:
                raise ValueError(f"{p} must be in [0, 1]")
        object.__setattr__(self, "banned_token_ids", tuple(self.banned_token_ids))


def tokenizer_fields(tokenizer) -> dict:
    """The MariaConfig fields a BERT tokenizer decides: vocabulary size and special-token ids."""
    know = tokenizer.convert_tokens_to_ids("[KNOW]")
    return {
        "vocab_size": len(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
        "cls_token_id": tokenizer.cls_token_id,
        "sep_token_id": tokenizer.sep_token_id,
        "mask_token_id": tokenizer.mask_token_id,
        "unk_token_id": tokenizer.unk_token_id,
        "know_token_id": know if know != tokenizer.unk_token_id else None,
        "banned_token_ids": tuple(sorted(set(tokenizer.all_special_ids) - {tokenizer.sep_token_id})),
    }


# --------------------------------------------------------------------------------------------
# model


def _bert_from_config(cfg: MariaConfig):
    """A randomly initialised encoder of the architecture ``cfg`` describes."""
    from transformers import BertConfig, BertForMaskedLM

    if cfg.bert_config is not None:  # the architecture is known (a trained model, a resume)
        return BertForMaskedLM(BertConfig(**cfg.bert_config))
    bc = BertConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
        intermediate_size=cfg.intermediate_size,
        max_position_embeddings=cfg.max_position_embeddings,
        hidden_dropout_prob=cfg.hidden_dropout_prob,
        attention_probs_dropout_prob=cfg.attention_probs_dropout_prob,
        initializer_range=cfg.initializer_range,
        type_vocab_size=N_TYPES, pad_token_id=cfg.pad_token_id,
    )
    bc._attn_implementation = "sdpa"
    return BertForMaskedLM(bc)


def _pretrained_bert(cfg: MariaConfig, init: str):
    """``init``'s pretrained encoder, resized to the vocabulary, with 5 token types (the
    new rows initialised from row 1)."""
    from transformers import BertForMaskedLM

    try:
        try:
            mlm = BertForMaskedLM.from_pretrained(init, local_files_only=True,
                                                  attn_implementation="sdpa")
        except OSError:
            if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0"):
                raise
            mlm = BertForMaskedLM.from_pretrained(init, attn_implementation="sdpa")
    except OSError as exc:
        raise RuntimeError(
            f"could not load the pretrained encoder {init!r} (offline and not cached? "
            f"set HF_HOME to a cache holding it, or use init: scratch): {exc}") from exc
    if mlm.config.vocab_size != cfg.vocab_size:
        mlm.resize_token_embeddings(cfg.vocab_size)
    emb = mlm.bert.embeddings
    if emb.token_type_embeddings.num_embeddings < N_TYPES:
        old = emb.token_type_embeddings
        new = nn.Embedding(N_TYPES, old.embedding_dim)
        with torch.no_grad():
            new.weight[: old.num_embeddings] = old.weight
            new.weight[old.num_embeddings:] = old.weight[min(1, old.num_embeddings - 1)]
        emb.token_type_embeddings = new
        mlm.config.type_vocab_size = N_TYPES
    return mlm


_BACKBONE_DIMS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
                  "max_position_embeddings", "initializer_range")


def build_backbone(cfg: MariaConfig, init: str = "scratch"):
    """(encoder, config): the BERT encoder of ``init`` (``scratch``, or a checkpoint dir / hub
    name: its pretrained weights) unless ``cfg`` already has a ``bert_config`` (random weights of
    that architecture), and a new MariaConfig completed with its architecture (``bert_config``
    and the dims), which is what a trained model saves."""
    mlm = _pretrained_bert(cfg, init) if (cfg.bert_config is None and init != "scratch") \
        else _bert_from_config(cfg)
    bc = mlm.config
    filled = dataclasses.replace(cfg, bert_config=bc.to_dict(),
                                 **{k: getattr(bc, k) for k in _BACKBONE_DIMS})
    return mlm, filled


class Maria(nn.Module):
    def __init__(self, cfg: MariaConfig, mlm=None):
        """``mlm``: the encoder from :func:`build_backbone`; None builds it from ``cfg``
        (scratch or a known ``bert_config``), randomly initialised."""
        super().__init__()
        if mlm is None:
            mlm = _bert_from_config(cfg)
        bc = mlm.config
        if bc.vocab_size != cfg.vocab_size:
            raise ValueError(f"the encoder has {bc.vocab_size} tokens, the config {cfg.vocab_size}")
        if bc.type_vocab_size < N_TYPES:
            raise ValueError(f"the encoder has {bc.type_vocab_size} token types, Maria needs {N_TYPES}")
        if cfg.max_text_len > bc.max_position_embeddings:
            raise ValueError(f"max_text_len {cfg.max_text_len} > the encoder's "
                             f"{bc.max_position_embeddings} positions")
        self.cfg = cfg
        self.mlm = mlm
        H = bc.hidden_size
        self.visual_proj = nn.Linear(cfg.visual_dim, H) if cfg.use_visual else None
        self.visual_pos = nn.Embedding(cfg.max_frames, H) if cfg.use_visual else None
        self.audio_proj = nn.Linear(cfg.audio_dim, H) if cfg.use_audio else None
        self.audio_pos = nn.Embedding(cfg.max_audio_frames, H) if cfg.use_audio else None
        self.feat_norm = nn.LayerNorm(H, eps=bc.layer_norm_eps) if (cfg.use_visual or cfg.use_audio) else None
        # per-dimension standardisation of the raw features (training-set mean/std, set by
        # set_feature_stats before training, saved with the weights); identity until then
        self.visual_norm = FeatureStandardizer(cfg.visual_dim, "visual") if cfg.use_visual else None
        self.audio_norm = FeatureStandardizer(cfg.audio_dim, "audio") if cfg.use_audio else None
        self.feat_drop = nn.Dropout(bc.hidden_dropout_prob)
        for m in (self.visual_proj, self.visual_pos, self.audio_proj, self.audio_pos):
            if m is not None:
                nn.init.normal_(m.weight, std=bc.initializer_range)
                if getattr(m, "bias", None) is not None:
                    nn.init.zeros_(m.bias)

    def set_feature_stats(self, visual=None, audio=None, weights=None) -> dict:
        """Standardise raw features per dimension with the statistics of ``visual`` / ``audio``
        (iterables of (n_i, dim) arrays, e.g. every training video's frames, read in one
        streaming pass; ``weights``: how many times each array counts); see
        :mod:`tiktalk.models.features`. Returns {"visual": n_rows, "audio": n_rows} for the
        modalities in use."""
        counts = {}
        for name, arrays, norm in (("visual", visual, self.visual_norm),
                                   ("audio", audio, self.audio_norm)):
            if norm is not None and arrays is not None:
                counts[name] = norm.fit(arrays, weights=weights)
        return counts

    # ---- embeddings / mask -------------------------------------------------------------------

    def _embed(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Embeddings (B, L, H), key validity (B, L) and is_response (L,) for the full sequence."""
        cfg = self.cfg
        ids = batch["input_ids"]                       # (B, T) response slots + text
        B, T = ids.shape
        pos = torch.arange(T, device=ids.device).unsqueeze(0).expand(B, T)
        emb = self.mlm.bert.embeddings
        x = emb(input_ids=ids, token_type_ids=batch["token_type_ids"], position_ids=pos)
        parts, valid = [x], [batch["text_mask"].bool()]
        for name, proj, pemb, ttype in (("visual", self.visual_proj, self.visual_pos, TYPE_VISUAL),
                                        ("audio", self.audio_proj, self.audio_pos, TYPE_AUDIO)):
            if proj is None:
                continue
            feats, fmask = batch[f"{name}"], batch[f"{name}_mask"]
            n = feats.shape[1]
            if n == 0:
                continue
            fpos = torch.arange(n, device=ids.device)
            tt = emb.token_type_embeddings(torch.full((n,), ttype, device=ids.device))
            norm = self.visual_norm if name == "visual" else self.audio_norm
            f = proj(norm(feats.to(x.dtype))) + pemb(fpos).unsqueeze(0) + tt.unsqueeze(0)
            parts.append(self.feat_drop(self.feat_norm(f)))
            valid.append(fmask.bool())
        is_resp = torch.zeros(sum(p.shape[1] for p in parts), dtype=torch.bool, device=ids.device)
        is_resp[: cfg.max_response_len] = True
        return torch.cat(parts, 1), torch.cat(valid, 1), is_resp

    @staticmethod
    def unilm_mask(valid: torch.Tensor, is_resp: torch.Tensor) -> torch.Tensor:
        """Boolean (B, L, L) ``allowed[b, q, k]``: the UniLM seq2seq mask with padding."""
        L = is_resp.shape[0]
        idx = torch.arange(L, device=valid.device)
        causal = idx.view(L, 1) >= idx.view(1, L)
        q_resp, k_resp = is_resp.view(L, 1), is_resp.view(1, L)
        allowed = (~k_resp) | (q_resp & causal)        # anyone -> non-response; response causal
        return allowed.unsqueeze(0) & valid.unsqueeze(1)

    def encode(self, batch: dict) -> torch.Tensor:
        x, valid, is_resp = self._embed(batch)
        allowed = self.unilm_mask(valid, is_resp)
        add = torch.zeros(allowed.shape, dtype=x.dtype, device=x.device)
        add = add.masked_fill(~allowed, torch.finfo(x.dtype).min).unsqueeze(1)
        out = self.mlm.bert.encoder(x, attention_mask=add)
        return out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]

    # ---- training ------------------------------------------------------------------------------

    def mask_tokens(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(masked input_ids, labels with -100 where not predicted) for MRP/MCP/MKP."""
        cfg = self.cfg
        ids = batch["input_ids"]
        tt = batch["token_type_ids"]
        cand = batch["maskable"].bool()               # real, non-special tokens (+ response [SEP])
        resp_slot = torch.zeros_like(cand)
        resp_slot[:, : cfg.max_response_len] = True
        prob = torch.zeros(ids.shape, device=ids.device)
        prob[resp_slot] = cfg.mask_prob_response
        prob[(~resp_slot) & (tt == TYPE_CONTEXT)] = cfg.mask_prob_context
        if cfg.use_knowledge:
            prob[(~resp_slot) & (tt == TYPE_KNOWLEDGE)] = cfg.mask_prob_knowledge
        prob = prob * cand
        chosen = torch.bernoulli(prob).bool()
        # at least one response token per row (Oscar/Maria), so every row trains MRP
        resp_cand = cand & resp_slot
        need = (~(chosen & resp_slot).any(1)) & resp_cand.any(1)
        if need.any():
            r = torch.rand(ids.shape, device=ids.device).masked_fill(~resp_cand, -1.0)
            forced = F.one_hot(r.argmax(1), ids.shape[1]).bool() & need.unsqueeze(1)
            chosen = chosen | forced
        labels = torch.where(chosen, ids, torch.full_like(ids, -100))
        u = torch.rand(ids.shape, device=ids.device)
        masked = ids.clone()
        masked[chosen & (u < 0.8)] = cfg.mask_token_id
        rand_pos = chosen & (u >= 0.8) & (u < 0.9)
        if rand_pos.any():
            masked[rand_pos] = torch.randint(cfg.vocab_size, (int(rand_pos.sum()),), device=ids.device)
        return masked, labels

    def forward(self, batch: dict) -> torch.Tensor:
        masked, labels = self.mask_tokens(batch)
        hidden = self.encode({**batch, "input_ids": masked})
        T = labels.shape[1]
        sel = labels != -100
        h = hidden[:, :T][sel]
        logits = self.mlm.cls(h)
        return F.cross_entropy(logits.float(), labels[sel])

    # ---- decoding ------------------------------------------------------------------------------

    @torch.no_grad()
    def generate(self, batch: dict, decode: MariaDecode | None = None) -> list[list[int]]:
        """Response token ids (no [CLS]/[SEP]) for every row of ``batch``, by beam search with
        the ``decode`` settings (default :class:`MariaDecode`)."""
        cfg = self.cfg
        decode = decode or MariaDecode()
        K = decode.beam_size
        R = cfg.max_response_len
        max_len = min(decode.max_len, R - 2)
        B = batch["input_ids"].shape[0]
        was = self.training
        self.eval()
        state = expand_for_beams({k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}, K)
        device = batch["input_ids"].device

        def step(prefix: torch.Tensor, st: dict):
            n, t = prefix.shape
            ids = st["input_ids"].clone()
            tm = st["text_mask"].clone()
            ids[:, 1: 1 + t] = prefix
            ids[:, 1 + t] = cfg.mask_token_id
            ids[:, 2 + t: R] = cfg.pad_token_id
            tm[:, : 2 + t] = 1
            tm[:, 2 + t: R] = 0
            hidden = self.encode({**st, "input_ids": ids, "text_mask": tm})
            return self.mlm.cls(hidden[:, 1 + t]), st

        out = beam_search(step, state, B, K, max_len + 1, cfg.sep_token_id,
                          min_len=decode.min_len, length_penalty=decode.length_penalty,
                          repetition_penalty=decode.repetition_penalty,
                          banned_ids=cfg.banned_token_ids, device=device)
        self.train(was)
        return [seq[:max_len] for seq in out]


# --------------------------------------------------------------------------------------------
# inputs: tokenised example -> padded batch


def build_example(cfg: MariaConfig, tokenizer, context: list[str], response: str | None,
                  knowledge_text: str | None = None, frames=None, audio=None) -> dict:
    """One example as unpadded lists/arrays (no tensors yet); ``response`` None at decode time."""
    R = cfg.max_response_len
    enc = lambda s: tokenizer(s, add_special_tokens=False)["input_ids"]  # noqa: E731
    resp = enc(response)[: R - 2] if response else []
    resp_ids = [cfg.cls_token_id] + resp + [cfg.sep_token_id]
    budget = cfg.max_text_len - R
    know: list[int] = []
    if cfg.use_knowledge and knowledge_text:
        know = _fit_flows(enc(knowledge_text), cfg.know_token_id,
                          cfg.max_knowledge_len - 1) + [cfg.sep_token_id]
    turns = [enc(t) + [cfg.sep_token_id] for t in context if t is not None]
    ctx: list[int] = []
    room = max(1, budget - len(know))
    for turn in reversed(turns):  # newest first; truncate the oldest turns
        if len(ctx) + len(turn) > room:
            ctx = turn[len(turn) - (room - len(ctx)):] + ctx if len(ctx) < room else ctx
            break
        ctx = turn + ctx
    text = ctx + know
    types = [TYPE_CONTEXT] * len(ctx) + [TYPE_KNOWLEDGE] * len(know)
    specials = {cfg.sep_token_id, cfg.cls_token_id, cfg.pad_token_id, cfg.know_token_id}
    maskable_text = [0 if t in specials else 1 for t in text]
    ex = {"resp_ids": resp_ids, "text_ids": text, "text_types": types, "text_maskable": maskable_text}
    ex["frames"] = cap_frames(frames, cfg.max_frames) if cfg.use_visual else None
    ex["audio"] = cap_frames(audio, cfg.max_audio_frames) if cfg.use_audio else None
    return ex


def _fit_flows(ids: list[int], marker: int | None, budget: int) -> list[int]:
    """The leading whole flows of ``ids`` (each starting at a ``marker`` token) that fit in
    ``budget`` tokens, best first; a flow is never cut in the middle, except the first one
    when it alone is longer than the budget."""
    if len(ids) <= budget:
        return ids
    starts = [i for i, t in enumerate(ids) if t == marker and i > 0] if marker is not None else []
    kept = 0
    for end in starts + [len(ids)]:
        if end > budget:
            break
        kept = end
    return ids[:kept] if kept else ids[:budget]


def cap_frames(arr, n_max: int):
    """At most ``n_max`` rows of (n, dim) features, uniformly subsampled (first and last kept);
    float32; None stays None."""
    import numpy as np

    if arr is None:
        return None
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim != 2:
        arr = arr.reshape(0, 0) if arr.size == 0 else arr.reshape(len(arr), -1)
    if len(arr) > n_max:  # uniform subsampling, first and last kept
        idx = np.linspace(0, len(arr) - 1, n_max).round().astype(int)
        arr = arr[idx]
    return arr


def collate(examples: list[dict], cfg: MariaConfig) -> dict:
    """Pad a list of :func:`build_example` outputs into the model's batch dict."""
    B, R = len(examples), cfg.max_response_len
    Lt = max(1, max(len(e["text_ids"]) for e in examples))
    T = R + Lt
    ids = torch.full((B, T), cfg.pad_token_id, dtype=torch.long)
    tt = torch.full((B, T), TYPE_CONTEXT, dtype=torch.long)
    tt[:, :R] = TYPE_RESPONSE
    tmask = torch.zeros(B, T, dtype=torch.long)
    maskable = torch.zeros(B, T, dtype=torch.long)
    for i, e in enumerate(examples):
        r = e["resp_ids"]
        ids[i, : len(r)] = torch.tensor(r)
        tmask[i, : len(r)] = 1
        maskable[i, 1: len(r)] = 1  # response tokens and its closing [SEP] (MRP)
        n = len(e["text_ids"])
        if n:
            ids[i, R: R + n] = torch.tensor(e["text_ids"])
            tt[i, R: R + n] = torch.tensor(e["text_types"])
            tmask[i, R: R + n] = 1
            maskable[i, R: R + n] = torch.tensor(e["text_maskable"])
    batch = {"input_ids": ids, "token_type_ids": tt, "text_mask": tmask, "maskable": maskable}
    for name, dim, cap in (("frames", cfg.visual_dim, cfg.max_frames),
                           ("audio", cfg.audio_dim, cfg.max_audio_frames)):
        use = cfg.use_visual if name == "frames" else cfg.use_audio
        if not use:
            continue
        key = "visual" if name == "frames" else "audio"
        arrs = [e[name] for e in examples]
        n = max([0] + [len(a) for a in arrs if a is not None])
        n = max(1, min(n, cap))  # at least one (masked) slot keeps shapes simple
        feats = torch.zeros(B, n, dim)
        fmask = torch.zeros(B, n, dtype=torch.long)
        for i, a in enumerate(arrs):
            if a is None or len(a) == 0:
                continue
            if a.shape[1] != dim:
                raise ValueError(f"{key} features have dim {a.shape[1]}, the model expects {dim}")
            feats[i, : len(a)] = torch.from_numpy(a[:n])
            fmask[i, : len(a)] = 1
        batch[key] = feats
        batch[f"{key}_mask"] = fmask
    return batch
