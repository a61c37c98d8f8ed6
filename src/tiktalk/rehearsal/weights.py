"""Tiny pretrained weights for the rehearsal (config/rehearsal.yaml): each artifact is a tiny
model OF THE SAME CLASS as the real one, saved the way the real one is distributed, so the
rehearsal loads it through exactly the code path the real weights take.

==================  ============================================  ================================
artifact            real one                                      tiny one (same class, same files)
==================  ============================================  ================================
bert-base-chinese   BertForMaskedLM + BERT tokenizer (21,128)      BertForMaskedLM, hidden 32, CJK vocab
resnet101-imagenet  torchvision resnet101 state dict              resnet101 state dict (random, fp16)
vggish              torchvggish VGGish state dict + PCA params    the same (random, fp16; random PCA)
gpt2-chitchat       GPT2LMHeadModel (pytorch_model.bin) + vocab   GPT2LMHeadModel, 2 layers of 32
sbert-chinese       sentence-transformers (BERT + mean pooling)   the same on the tiny BERT
chinese-clip        ChineseCLIPModel + processor                  ChineseCLIPModel, 1 layer each
chatglm-6b          ChatGLM-6B: remote code (auto_map), ice_text  the interface double's remote
                    sentencepiece, fp16 .bin shards + index       code, 16-d, the same files
blip2-opt-2.7b      Blip2ForConditionalGeneration, safetensors    the same class, 12/16-d, 8
                    shards + index (vision, Q-Former, OPT)        queries, the same files
==================  ============================================  ================================

``build_rehearsal_weights(root)`` writes ``root/<name>/...`` and returns ``{name: [files]}``;
the file lists are exactly those of ``weights.artifacts`` in config/rehearsal.yaml (a test
checks it). Deterministic: every model is seeded. The LLM rows' two are built by
:mod:`tiktalk.rehearsal.llm` (ChatGLM's tokenizer trained on lines of the vocabulary
below; it needs ``sentencepiece``, which the test extra and the LLM env install). Build them
with the main env (transformers 5): the files are listed for its ``save_pretrained``.

The vocabulary is BERT-style for Chinese: the special tokens, printable ASCII, CJK punctuation,
full-width forms and every CJK unified ideograph (U+4E00..U+9FA5), so Chinese text tokenizes
per character as with bert-base-chinese.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Callable

SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
HIDDEN = 32


def rehearsal_vocab() -> list[str]:
    """Specials, printable ASCII, CJK punctuation, full-width forms, CJK unified ideographs."""
    ranges = ((33, 127), (0x3001, 0x3040), (0xFF01, 0xFF5F), (0x4E00, 0x9FA6))
    return [*SPECIALS, *(chr(c) for lo, hi in ranges for c in range(lo, hi))]


def _write_vocab(path: Path) -> None:
    path.write_text("\n".join(rehearsal_vocab()) + "\n", encoding="utf-8")


def _tokenizer(out: Path):
    """A BERT tokenizer on the rehearsal vocabulary, saved as bert-base-chinese's is (with vocab.txt)."""
    from transformers import BertTokenizerFast

    out.mkdir(parents=True, exist_ok=True)
    _write_vocab(out / "vocab.txt")
    tok = BertTokenizerFast(vocab=str(out / "vocab.txt"), do_lower_case=False,
                            tokenize_chinese_chars=True, strip_accents=False)
    tok.save_pretrained(str(out))
    return tok


@contextlib.contextmanager
def _seeded(seed: int):
    """Build a model from ``seed`` without touching the caller's torch RNG."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _bert(out: Path, seed: int, with_mlm_head: bool = True) -> None:
    from transformers import BertConfig, BertForMaskedLM, BertModel

    tok = _tokenizer(out)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=2 * HIDDEN, pad_token_id=tok.pad_token_id)
    with _seeded(seed):
        model = BertForMaskedLM(cfg) if with_mlm_head else BertModel(cfg)
    model.save_pretrained(str(out))


def bert_base_chinese(out: Path, seed: int) -> None:
    """bert-base-chinese's class and files: BertForMaskedLM, its tokenizer and vocab.txt."""
    _bert(out, seed)


def resnet101_imagenet(out: Path, seed: int) -> None:
    import torch
    import torchvision

    out.mkdir(parents=True, exist_ok=True)
    with _seeded(seed):
        model = torchvision.models.resnet101(weights=None, zero_init_residual=True)
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()},
               out / "resnet101-rehearsal.pth")


def vggish(out: Path, seed: int) -> None:
    import torch

    from tiktalk.media.vggish import EMBEDDING_SIZE, VGGish

    out.mkdir(parents=True, exist_ok=True)
    with _seeded(seed):
        model = VGGish()
        eig, _ = torch.linalg.qr(torch.randn(EMBEDDING_SIZE, EMBEDDING_SIZE, dtype=torch.float64))
        means = torch.randn(EMBEDDING_SIZE, 1, dtype=torch.float64) * 0.1
    torch.save({k: v.half() for k, v in model.state_dict().items()}, out / "vggish-rehearsal.pth")
    # torchvggish's layout: a dict of tensors, means (128, 1)
    torch.save({"pca_eigen_vectors": eig, "pca_means": means}, out / "vggish_pca_params-rehearsal.pth")


def gpt2_chitchat(out: Path, seed: int) -> None:
    """GPT2-chitchat's released layout: config.json + pytorch_model.bin, and its vocab.txt."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    out.mkdir(parents=True, exist_ok=True)
    _write_vocab(out / "vocab.txt")
    vocab = rehearsal_vocab()
    cfg = GPT2Config(vocab_size=len(vocab), n_layer=2, n_embd=HIDDEN, n_head=2, n_positions=300,
                     bos_token_id=vocab.index("[CLS]"), eos_token_id=vocab.index("[SEP]"),
                     pad_token_id=vocab.index("[PAD]"))
    with _seeded(seed):
        model = GPT2LMHeadModel(cfg)
    cfg.save_pretrained(str(out))
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    torch.save(state, out / "pytorch_model.bin")


def sbert_chinese(out: Path, seed: int) -> None:
    """A sentence-transformers directory (BERT + mean pooling) on a tiny BERT."""
    import tempfile

    from sentence_transformers import SentenceTransformer

    try:
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    except ImportError:  # older sentence-transformers
        from sentence_transformers.models import Pooling, Transformer

    with tempfile.TemporaryDirectory() as tmp:
        _bert(Path(tmp) / "bert", seed, with_mlm_head=False)
        word = Transformer(str(Path(tmp) / "bert"), max_seq_length=64)
        dim = (getattr(word, "get_embedding_dimension", None) or word.get_word_embedding_dimension)()
        pool = Pooling(dim, pooling_mode="mean")
        SentenceTransformer(modules=[word, pool], device="cpu").save(str(out))
    (out / "README.md").unlink(missing_ok=True)


def chinese_clip(out: Path, seed: int) -> None:
    from transformers import ChineseCLIPConfig, ChineseCLIPImageProcessor, ChineseCLIPModel

    tok = _tokenizer(out)
    cfg = ChineseCLIPConfig(
        text_config={"vocab_size": len(tok), "hidden_size": HIDDEN, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "intermediate_size": 2 * HIDDEN},
        vision_config={"hidden_size": HIDDEN, "intermediate_size": 2 * HIDDEN, "num_hidden_layers": 1,
                       "num_attention_heads": 2, "image_size": 32, "patch_size": 8},
        projection_dim=16)
    with _seeded(seed):
        model = ChineseCLIPModel(cfg)
    model.save_pretrained(str(out))
    ChineseCLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}) \
        .save_pretrained(str(out))


def chatglm_6b(out: Path, seed: int) -> None:
    """ChatGLM-6B's class and files: remote code, ice_text.model covering the vocabulary below,
    fp16 weights in two .bin shards with their index."""
    from tiktalk.rehearsal.llm import corpus_lines, write_chatglm

    write_chatglm(out, corpus_lines(c for c in rehearsal_vocab() if c not in SPECIALS), seed=seed)


def blip2_opt(out: Path, seed: int) -> None:
    """blip2-opt-2.7b's class and files: Blip2ForConditionalGeneration, 8 query tokens, two
    safetensors shards with their index."""
    from tiktalk.rehearsal.llm import write_blip2

    write_blip2(out, seed=seed, num_query_tokens=8, n_shards=2)


BUILDERS: dict[str, Callable[[Path, int], None]] = {
    "bert-base-chinese": bert_base_chinese,
    "resnet101-imagenet": resnet101_imagenet,
    "vggish": vggish,
    "gpt2-chitchat": gpt2_chitchat,
    "sbert-chinese": sbert_chinese,
    "chinese-clip": chinese_clip,
    "chatglm-6b": chatglm_6b,
    "blip2-opt-2.7b": blip2_opt,
}


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))


def build_rehearsal_weights(root: str | Path, names=None, seed: int = 13) -> dict[str, list[str]]:
    """Write the tiny artifacts ``names`` (default: all buildable) into ``root/<name>/``;
    return each one's files. An unknown name is an error naming the known ones."""
    root = Path(root)
    names = list(BUILDERS) if names is None else list(names)
    for name in names:
        if name not in BUILDERS:
            raise ValueError(f"unknown rehearsal artifact {name!r}; known: {sorted(BUILDERS)}")
    out = {}
    for name in names:   # each artifact has its own seed, whichever others are built with it
        BUILDERS[name](root / name, seed + list(BUILDERS).index(name))
        out[name] = _files(root / name)
    (root / "rehearsal.json").write_text(json.dumps({"seed": seed, "artifacts": out}, indent=1) + "\n",
                                         encoding="utf-8")
    return out
