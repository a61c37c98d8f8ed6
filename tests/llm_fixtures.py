"""Model directories for the LLM-row tests, written the way the real models ship (no hub here).

* :func:`write_chatglm_double`: a ChatGLM-6B interface double (``tiktalk.rehearsal.chatglm_double``:
  remote code registered through ``auto_map``, a sentencepiece tokenizer trained on a few
  sentences, random fp16 weights in .bin shards), loaded by the pipeline with
  ``trust_remote_code`` from the directory;
* :func:`write_native_llm`: a tiny LLM of a class transformers ships (Qwen2 where this
  transformers has it, else Llama) with a byte-level BPE tokenizer, saved the same way;
* :func:`write_blip2_checkpoint`: a tiny ``Blip2ForConditionalGeneration`` (vision model,
  query tokens, Q-Former, OPT) saved as safetensors, the layout of Salesforce/blip2-opt-2.7b.

Every builder works under both pin sets (transformers 5.x and the LLM env's 4.33), except that
the ChatGLM double's tokenizer, like the real one, loads only under transformers <= 4.33.
"""

from __future__ import annotations

from pathlib import Path

import torch

from tiktalk.rehearsal.llm import VISION as VIT


def transformers_before(major: int, minor: int) -> bool:
    import transformers

    return tuple(int(x) for x in transformers.__version__.split(".")[:2]) < (major, minor)


LLM_ENV = transformers_before(4, 34)          # the LLM env's pins (ChatGLM-6B's code runs)


def corpus_texts(extra=()) -> list[str]:
    from test_baselines_text import COLOURS, TEXTS

    from tiktalk.models.prompts import chatglm_prompt

    return list(TEXTS) + [f"是{c}的" for c in COLOURS] + [chatglm_prompt("问", [["问", "答"]], 3)] + list(extra)


# -- ChatGLM-6B double ----------------------------------------------------------------------
def write_chatglm_double(root: Path, texts=None, weights: bool = True, seed: int = 0, **sizes) -> Path:
    """A local model directory with ChatGLM-6B's layout and contract (the package's builder,
    tiktalk.rehearsal.llm.write_chatglm, on the tests' texts)."""
    from tiktalk.rehearsal.llm import write_chatglm

    return write_chatglm(Path(root) / "chatglm-double", texts or corpus_texts(), weights=weights, seed=seed,
                         **sizes)


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
def write_blip2_checkpoint(root: Path, seed: int = 0, num_query_tokens: int = 3) -> Path:
    """A tiny BLIP-2 (vision 12-d, 17 tokens a frame; Q-Former 16-d) saved as safetensors (the
    package's builder, tiktalk.rehearsal.llm.write_blip2)."""
    from tiktalk.rehearsal.llm import write_blip2

    return write_blip2(Path(root) / "tiny-blip2", seed=seed, num_query_tokens=num_query_tokens)


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
