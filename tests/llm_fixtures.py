"""Model directories for the LLM-row tests, written the way the real models ship (no hub here).

* :func:`write_chatglm_double`: a ChatGLM-6B interface double (``tests/chatglm_double``: remote
  code registered through ``auto_map``, a sentencepiece tokenizer trained on a few sentences,
  random weights saved with ``save_pretrained``), loaded by the pipeline with
  ``trust_remote_code`` from the directory;
* :func:`write_native_llm`: a tiny LLM of a class transformers ships (Qwen2 where this
  transformers has it, else Llama) with a byte-level BPE tokenizer, saved the same way;
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


def transformers_before(major: int, minor: int) -> bool:
    import transformers

    return tuple(int(x) for x in transformers.__version__.split(".")[:2]) < (major, minor)


LLM_ENV = transformers_before(4, 34)          # the LLM env's pins (ChatGLM-6B's code runs)


def corpus_texts(extra=()) -> list[str]:
    from test_baselines_text import COLOURS, TEXTS

    from tiktalk.models.prompts import chatglm_prompt

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
def native_llm_type() -> str:
    import transformers

    return "qwen2" if hasattr(transformers, "Qwen2Config") else "llama"


def bpe_tokenizer(texts=None):
    """A byte-level BPE tokenizer the way Qwen2 ships one (tokenizer.json), trained on ``texts``:
    ``<|endoftext|>`` pads, ``<|im_end|>`` ends a turn."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tk.train_from_iterator(texts or corpus_texts(), trainer=trainer)
    cls = PreTrainedTokenizerFast
    if native_llm_type() == "qwen2":
        from transformers import Qwen2TokenizerFast as cls
    return cls(tokenizer_object=tk, eos_token="<|im_end|>", pad_token="<|endoftext|>")


def write_native_llm(root: Path, texts=None, seed: int = 0) -> Path:
    """A tiny Qwen2 (Llama before transformers 4.37) with a byte-level BPE tokenizer, both saved
    with save_pretrained."""
    from transformers import AutoConfig, AutoModelForCausalLM

    out = Path(root) / f"tiny-{native_llm_type()}"
    tok = bpe_tokenizer(texts)
    tok.save_pretrained(str(out))
    conf = AutoConfig.for_model(native_llm_type(), vocab_size=len(tok), hidden_size=16, intermediate_size=32,
                                num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                max_position_embeddings=256, pad_token_id=tok.pad_token_id,
                                bos_token_id=None, eos_token_id=tok.eos_token_id, tie_word_embeddings=False)
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


def write_image_shard(path: Path, tokens: dict) -> Path:
    """An image-encoder shard (:mod:`tiktalk.formats` layout) from video_id -> (F, T, D) tokens."""
    import numpy as np

    from tiktalk.formats import FEATURES_VERSION

    ids = list(tokens)
    t, d = next(iter(tokens.values())).shape[1:]
    rows = [np.asarray(tokens[v], np.float16).reshape(-1, d) for v in ids]
    offsets = np.cumsum([0] + [len(r) for r in rows]).astype(np.int64)
    np.savez(path, version=np.int64(FEATURES_VERSION), video_ids=np.array(ids), frame_offsets=offsets,
             frames=np.concatenate(rows), audio_offsets=np.zeros(len(ids) + 1, dtype=np.int64),
             audio=np.zeros((0, 0), np.float16), tokens_per_frame=np.int64(t), encoder=np.array("test"))
    return path


def blip2_image_tokens(checkpoint: Path, video_ids, frames: int = 2, seed: int = 0) -> dict:
    """Tokens of random images through the checkpoint's own vision model (the media stage's
    ``load_blip2_vision``): video ``*_c`` gets images whose red channel encodes colour c."""
    from tiktalk.media.image_encoder import load_blip2_vision

    vision = load_blip2_vision(str(checkpoint)).eval()
    g = torch.Generator().manual_seed(seed)
    out = {}
    for vid in video_ids:
        x = torch.randn(frames, 3, VIT["image_size"], VIT["image_size"], generator=g) * 0.1
        x[:, 0] += float(vid.rsplit("_", 1)[1]) - 1.0
        with torch.no_grad():
            out[vid] = vision(pixel_values=x).last_hidden_state.numpy()
    return out
