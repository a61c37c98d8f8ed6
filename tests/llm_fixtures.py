"""Model directories for the LLM-row tests, written the way the real models ship (no hub here).

* :func:`write_chatglm_double`: a ChatGLM-6B interface double (``tests/chatglm_double``: remote
  code registered through ``auto_map``, a sentencepiece tokenizer trained on a few sentences,
  random weights saved with ``save_pretrained``), loaded by the pipeline with
  ``trust_remote_code`` from the directory;
* :func:`write_native_llm`: a tiny LLM of a class transformers ships (Qwen2 where this
  transformers has it, else Llama) with a BERT-style character tokenizer, saved the same way;
* :func:`write_blip2_checkpoint`: a tiny ``Blip2ForConditionalGeneration`` (vision model,
  query tokens, Q-Former, OPT) saved as safetensors, the layout of Salesforce/blip2-opt-2.7b.

Every builder works under both pin sets (transformers 5.x and the LLM env's 4.33), except that
the ChatGLM double's tokenizer, like the real one, loads only under transformers <= 4.33.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

DOUBLE_SRC = Path(__file__).parent / "chatglm_double"
BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def transformers_before(major: int, minor: int) -> bool:
    import transformers

    return tuple(int(x) for x in transformers.__version__.split(".")[:2]) < (major, minor)


LLM_ENV = transformers_before(4, 34)          # the LLM env's pins (ChatGLM-6B's code runs)


def corpus_texts(extra=()) -> list[str]:
    from test_baselines_text import COLOURS, TEXTS

    from tiktalk.models.causal_lm import chatglm_prompt

    return list(TEXTS) + [f"是{c}的" for c in COLOURS] + [chatglm_prompt("问", [["问", "答"]], 3)] + list(extra)


# -- ChatGLM-6B double ----------------------------------------------------------------------
def _train_sentencepiece(texts, out: Path) -> None:
    import sentencepiece as spm

    from chatglm_double.tokenization_chatglm import SPECIAL_PIECES

    lines = [t.replace("\n", "<n>") for t in texts if t]
    prefix = out.parent / "sp_tmp"
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines * 4), model_prefix=str(prefix), vocab_size=160, model_type="bpe",
        character_coverage=1.0, user_defined_symbols=SPECIAL_PIECES, unk_id=0, bos_id=1, eos_id=2,
        pad_id=3, hard_vocab_limit=False, normalization_rule_name="identity", minloglevel=2,
        num_threads=1)
    shutil.move(f"{prefix}.model", out)
    Path(f"{prefix}.vocab").unlink()


def write_chatglm_double(root: Path, texts=None, weights: bool = True, seed: int = 0, **sizes) -> Path:
    """A local model directory with ChatGLM-6B's layout and contract (see the module doc)."""
    import sentencepiece as spm

    out = Path(root) / "chatglm-double"
    out.mkdir(parents=True, exist_ok=True)
    for name in ("configuration_chatglm.py", "modeling_chatglm.py", "tokenization_chatglm.py"):
        shutil.copy(DOUBLE_SRC / name, out / name)
    _train_sentencepiece(texts or corpus_texts(), out / "ice_text.model")
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
    (out / "config.json").write_text(json.dumps(config, indent=2))
    (out / "tokenizer_config.json").write_text(json.dumps({
        "auto_map": {"AutoTokenizer": ["tokenization_chatglm.ChatGLMTokenizer", None]},
        "tokenizer_class": "ChatGLMTokenizer", "padding_side": "left", "bos_token": "<sop>",
        "eos_token": "<eop>", "end_token": "</s>", "gmask_token": "[gMASK]", "mask_token": "[MASK]",
        "pad_token": "<pad>", "unk_token": "<unk>"}, indent=2))
    if weights:
        from transformers import AutoConfig, AutoModel

        conf = AutoConfig.from_pretrained(str(out), trust_remote_code=True)
        torch.manual_seed(seed)
        model = AutoModel.from_config(conf, trust_remote_code=True)
        model.save_pretrained(str(out))
    return out


# -- native tiny LLM -------------------------------------------------------------------------
def write_char_tokenizer(out: Path, texts=None) -> Path:
    """A BERT-style tokenizer directory (vocab.txt of every character of ``texts``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    chars = sorted({c for t in (texts or corpus_texts()) for c in t if not c.isspace()})
    (out / "vocab.txt").write_text("\n".join(BERT_SPECIALS + chars) + "\n", encoding="utf-8")
    return out


def native_llm_type() -> str:
    import transformers

    return "qwen2" if hasattr(transformers, "Qwen2Config") else "llama"


def write_native_llm(root: Path, texts=None, seed: int = 0) -> Path:
    """A tiny Qwen2 (Llama before transformers 4.37) with its tokenizer, via save_pretrained."""
    from transformers import AutoConfig, AutoModelForCausalLM, BertTokenizerFast

    out = Path(root) / f"tiny-{native_llm_type()}"
    tok = BertTokenizerFast.from_pretrained(str(write_char_tokenizer(Path(root) / "chars", texts)))
    tok.save_pretrained(str(out))
    conf = AutoConfig.for_model(native_llm_type(), vocab_size=len(tok), hidden_size=16, intermediate_size=32,
                                num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                max_position_embeddings=256, pad_token_id=tok.pad_token_id,
                                bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id,
                                tie_word_embeddings=False)
    torch.manual_seed(seed)
    AutoModelForCausalLM.from_config(conf).save_pretrained(str(out))
    return out


# -- BLIP-2 checkpoint ----------------------------------------------------------------------
VIT = dict(image_size=32, patch_size=8, hidden_size=12, intermediate_size=24, num_hidden_layers=1,
           num_attention_heads=2)


def write_blip2_checkpoint(root: Path, seed: int = 0, num_query_tokens: int = 3) -> Path:
    """A tiny BLIP-2 (vision 12-d, 17 tokens a frame; Q-Former 16-d) saved as safetensors."""
    from transformers import Blip2Config, Blip2ForConditionalGeneration, OPTConfig

    text = OPTConfig(hidden_size=16, num_hidden_layers=1, ffn_dim=32, num_attention_heads=2, vocab_size=50,
                     word_embed_proj_dim=16, max_position_embeddings=32)
    conf = Blip2Config(vision_config=VIT,
                       qformer_config=dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                           intermediate_size=32, encoder_hidden_size=VIT["hidden_size"]),
                       text_config=text.to_dict(), num_query_tokens=num_query_tokens)
    torch.manual_seed(seed)
    model = Blip2ForConditionalGeneration(conf)
    with torch.no_grad():
        for p in list(model.qformer.parameters()) + [model.query_tokens] + list(model.vision_model.parameters()):
            p.add_(torch.randn_like(p) * 0.3)             # far from any default init
    out = Path(root) / "tiny-blip2"
    model.save_pretrained(str(out), safe_serialization=True)
    return out
