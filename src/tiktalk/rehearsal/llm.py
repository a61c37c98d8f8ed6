"""Tiny models of the LLM rows' classes, saved the way the real ones are distributed (no hub here).

* :func:`write_chatglm`: ChatGLM-6B's class: the interface double's remote code
  (:mod:`tiktalk.rehearsal.chatglm_double`, registered through ``config.json``'s ``auto_map``), a
  sentencepiece tokenizer (``ice_text.model``) trained on ``texts``, and fp16 weights in
  ``pytorch_model-0000K-of-0000N.bin`` shards with ``pytorch_model.bin.index.json``, the layout of
  THUDM/chatglm-6b. The pipeline loads it with ``trust_remote_code`` from the directory; its
  tokenizer, like the real one, loads only under transformers <= 4.33 (the LLM env).
* :func:`write_blip2`: a tiny ``Blip2ForConditionalGeneration`` (vision model, query tokens,
  Q-Former, OPT) saved as sharded safetensors with ``model.safetensors.index.json``, the layout of
  Salesforce/blip2-opt-2.7b. The media stage reads its ``vision_model.*`` tensors, the BLIP-2 rows
  its ``qformer.*`` and ``query_tokens``.

The rehearsal (:mod:`tiktalk.rehearsal.weights`) builds both, the tokenizer on lines of its whole
vocabulary (:func:`corpus_lines`); the tests build smaller ones from their own texts. Both
builders work under either pin set (transformers 5 and the LLM env's 4.33) and are
deterministic for a seed. The vocabulary of the
rehearsal's ChatGLM tokenizer covers the same characters as the rehearsal's BERT vocabulary
(every CJK unified ideograph, so Chinese text never maps to ``<unk>``).
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path
from typing import Iterable, Sequence

DOUBLE_SRC = Path(__file__).with_name("chatglm_double")
DOUBLE_FILES = ("configuration_chatglm.py", "modeling_chatglm.py", "tokenization_chatglm.py")
# the ChatGLM-6B prompt layout (tiktalk.models.prompts.chatglm_prompt): its markers are pieces too
PROMPT_LINES = ("[Round 0]\n问：你好\n答：你好",
                "[Round 1]\n问：这是什么颜色\n答：是红色的")
# the tests' tiny BLIP-2: vision 12-d (17 tokens a 32 px frame), Q-Former 16-d, OPT 16-d
VISION = dict(image_size=32, patch_size=8, hidden_size=12, intermediate_size=24, num_hidden_layers=1,
              num_attention_heads=2)


@contextlib.contextmanager
def _seeded(seed: int):
    """Build a model from ``seed`` without touching the caller's torch RNG."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def corpus_lines(chars: Sequence[str], per_line: int = 40) -> list[str]:
    """Lines holding every one of ``chars`` (``per_line`` a line) and ChatGLM's prompt markers:
    a tokenizer trained on them has a piece for each character."""
    chars = list(chars)
    return [*("".join(chars[i:i + per_line]) for i in range(0, len(chars), per_line)), *PROMPT_LINES]


def train_sentencepiece(texts: Iterable[str], out: Path) -> None:
    """A BPE sentencepiece model at ``out`` (ChatGLM's ``ice_text.model``): ``"\\n"`` written as
    ``<n>``, ChatGLM's special pieces, unk/bos/eos/pad = 0..3; every character of ``texts`` is
    a piece (the vocabulary is at least 160, more when the characters need it)."""
    import sentencepiece as spm

    from tiktalk.rehearsal.chatglm_double.tokenization_chatglm import SPECIAL_PIECES

    lines = [t.replace("\n", "<n>") for t in texts if t]
    n_chars = len(set("".join(lines)))
    model = io.BytesIO()          # no model_prefix: the model would record that (temporary) path
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines * 4), model_writer=model,
        vocab_size=max(160, n_chars + len(SPECIAL_PIECES) + 64), model_type="bpe",
        character_coverage=1.0, user_defined_symbols=SPECIAL_PIECES, unk_id=0, bos_id=1, eos_id=2,
        pad_id=3, hard_vocab_limit=False, normalization_rule_name="identity", minloglevel=2,
        num_threads=1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(model.getvalue())


def _save_bin_shards(state: dict, out: Path, n_shards: int) -> None:
    """``state`` as ``pytorch_model-0000K-of-0000N.bin`` + ``pytorch_model.bin.index.json``
    (transformers' sharded PyTorch layout, as ChatGLM-6B ships)."""
    import torch

    names = list(state)
    per = -(-len(names) // n_shards)
    weight_map, total = {}, 0
    for k in range(n_shards):
        file = f"pytorch_model-{k + 1:05d}-of-{n_shards:05d}.bin"
        part = {n: state[n].contiguous() for n in names[k * per:(k + 1) * per]}
        torch.save(part, out / file)
        for n, t in part.items():
            weight_map[n] = file
            total += t.numel() * t.element_size()
    (out / "pytorch_model.bin.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2) + "\n")


def write_chatglm(out: str | Path, texts: Sequence[str], weights: bool = True, seed: int = 0,
                  n_shards: int = 2, **sizes) -> Path:
    """A ChatGLM-6B-class model directory at ``out`` (see the module doc); ``sizes`` override
    the config (hidden_size 16, 2 layers, 2 heads). ``weights=False``: code, config and
    tokenizer only."""
    import sentencepiece as spm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name in DOUBLE_FILES:
        shutil.copy(DOUBLE_SRC / name, out / name)
    train_sentencepiece(texts, out / "ice_text.model")
    sp = spm.SentencePieceProcessor(model_file=str(out / "ice_text.model"))
    config = {
        "architectures": ["ChatGLMModel"],
        "auto_map": {"AutoConfig": "configuration_chatglm.ChatGLMConfig",
                     "AutoModel": "modeling_chatglm.ChatGLMForConditionalGeneration",
                     "AutoModelForSeq2SeqLM": "modeling_chatglm.ChatGLMForConditionalGeneration"},
        "model_type": "chatglm", "vocab_size": sp.get_piece_size(),
        "hidden_size": 16, "num_layers": 2, "num_attention_heads": 2, "inner_hidden_size": 32,
        "max_sequence_length": 256, "layernorm_epsilon": 1e-5, "position_encoding_2d": True,
        "bos_token_id": sp.piece_to_id("<sop>"), "eos_token_id": sp.piece_to_id("<eop>"),
        "mask_token_id": sp.piece_to_id("[MASK]"), "gmask_token_id": sp.piece_to_id("[gMASK]"),
        "pad_token_id": sp.piece_to_id("<pad>"), "torch_dtype": "float16", "use_cache": True,
        **sizes,
    }
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out / "tokenizer_config.json").write_text(json.dumps({
        "auto_map": {"AutoTokenizer": ["tokenization_chatglm.ChatGLMTokenizer", None]},
        "tokenizer_class": "ChatGLMTokenizer", "padding_side": "left", "bos_token": "<sop>",
        "eos_token": "<eop>", "end_token": "</s>", "gmask_token": "[gMASK]", "mask_token": "[MASK]",
        "pad_token": "<pad>", "unk_token": "<unk>"}, indent=2) + "\n")
    if weights:
        import torch
        from transformers import AutoConfig, AutoModel

        conf = AutoConfig.from_pretrained(str(out), trust_remote_code=True)
        with _seeded(seed):
            model = AutoModel.from_config(conf, trust_remote_code=True)
        state = {k: v.detach().to(torch.float16) if v.is_floating_point() else v.detach()
                 for k, v in model.state_dict().items()}
        _save_bin_shards(state, out, n_shards)
    return out


def write_blip2(out: str | Path, seed: int = 0, num_query_tokens: int = 3, n_shards: int = 1,
                vision: dict | None = None) -> Path:
    """A tiny BLIP-2 checkpoint directory at ``out`` (vision ``vision`` or :data:`VISION`;
    Q-Former 16-d, 2 layers; OPT 16-d) as safetensors; ``n_shards`` > 1 splits it into about
    that many shards with ``model.safetensors.index.json``, as Salesforce/blip2-opt-2.7b ships.
    The vision tower, queries and Q-Former are moved far from any default init (the tests tell
    loaded from random)."""
    import torch
    from transformers import Blip2Config, Blip2ForConditionalGeneration, OPTConfig

    vit = dict(vision or VISION)
    text = OPTConfig(hidden_size=16, num_hidden_layers=1, ffn_dim=32, num_attention_heads=2, vocab_size=50,
                     word_embed_proj_dim=16, max_position_embeddings=32)
    conf = Blip2Config(vision_config=vit,
                       qformer_config=dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                           intermediate_size=32, encoder_hidden_size=vit["hidden_size"]),
                       text_config=text.to_dict(), num_query_tokens=num_query_tokens)
    with _seeded(seed):
        model = Blip2ForConditionalGeneration(conf)
        with torch.no_grad():
            for p in (list(model.qformer.parameters()) + [model.query_tokens]
                      + list(model.vision_model.parameters())):
                p.add_(torch.randn_like(p) * 0.3)
    out = Path(out)
    kwargs = {}
    if n_shards > 1:
        total = sum(t.numel() * t.element_size() for t in model.state_dict().values())
        kwargs["max_shard_size"] = -(-total // n_shards)
    model.save_pretrained(str(out), safe_serialization=True, **kwargs)
    return out
