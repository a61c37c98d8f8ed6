"""BERT-style Chinese WordPiece tokenizers: train one on the corpus, or load a saved/hub one.

``bert-base-chinese`` splits every CJK character into its own token (BertNormalizer's
``handle_chinese_chars``) and word-pieces the rest; :func:`train_wordpiece` builds the same kind
of tokenizer from our own texts (the demo's, or when no hub access exists) and saves it as a
directory that ``transformers.BertTokenizerFast.from_pretrained`` loads.

Public API::

    train_wordpiece(texts, out_dir, vocab_size=8000, extra_special_tokens=EXTRA_SPECIAL_TOKENS,
                    min_frequency=1, lowercase=False) -> BertTokenizerFast
    load_tokenizer(name_or_dir, extra_special_tokens=EXTRA_SPECIAL_TOKENS) -> BertTokenizerFast
    decode_tokens(tokenizer, ids) -> str     # Chinese-friendly decode (no spaces between CJK)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

BERT_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# Extra markers used by the baselines: [TAG] (Maria's concept tags), [KNOW] (one C3KG flow),
# [SPK1]/[SPK2] (speaker turns, optional), [VIS]/[AUD] (placeholders for feature slots).
EXTRA_SPECIAL_TOKENS = ("[TAG]", "[KNOW]", "[SPK1]", "[SPK2]", "[VIS]", "[AUD]")


def _tokenizer_class():
    from transformers import BertTokenizerFast

    return BertTokenizerFast


def train_wordpiece(
    texts: Iterable[str],
    out_dir: str | os.PathLike,
    vocab_size: int = 8000,
    extra_special_tokens: Sequence[str] = EXTRA_SPECIAL_TOKENS,
    min_frequency: int = 1,
    lowercase: bool = False,
):
    """Train a BERT WordPiece tokenizer on ``texts`` and save it to ``out_dir``.

    Normalisation is BERT's (clean text, CJK characters split individually, no accent
    stripping, lowercase off like bert-base-chinese's ``do_lower_case=False``); the pre-tokenizer
    is BERT's whitespace/punctuation splitter; ``[CLS] A [SEP]`` / ``[CLS] A [SEP] B [SEP]`` post-
    processing. Special tokens come first in the vocabulary: [PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3,
    [MASK]=4, then ``extra_special_tokens``. Returns the loaded ``BertTokenizerFast``.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    specials = list(BERT_SPECIAL_TOKENS) + [t for t in extra_special_tokens if t not in BERT_SPECIAL_TOKENS]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", continuing_subword_prefix="##"))
    tok.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=lowercase
    )
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=specials,
        continuing_subword_prefix="##",
        show_progress=False,
    )
    tok.train_from_iterator((t for t in texts if t), trainer=trainer)
    cls = _tokenizer_class()
    # transformers 5 builds the fast backend from the vocabulary itself (``vocab=``: a dict or a
    # vocab.txt path), with BERT's normaliser/pre-tokenizer/post-processor.
    fast = cls(
        vocab=dict(tok.get_vocab()),
        do_lower_case=lowercase,
        tokenize_chinese_chars=True,
        strip_accents=False,
    )
    missing = [t for t in extra_special_tokens if t not in fast.all_special_tokens]
    if missing:
        fast.add_special_tokens({"additional_special_tokens": list(missing)})
    fast.save_pretrained(str(out_dir))
    tok.model.save(str(out_dir))  # vocab.txt as well, for tools that want the classic layout
    return load_tokenizer(out_dir, extra_special_tokens=extra_special_tokens)


def load_tokenizer(
    name_or_dir: str | os.PathLike,
    extra_special_tokens: Sequence[str] = EXTRA_SPECIAL_TOKENS,
):
    """Load a BERT tokenizer from a saved directory or a hub name (``bert-base-chinese``).

    Markers in ``extra_special_tokens`` that the vocabulary lacks are added as special tokens
    (a model built on it must then resize its embeddings to ``len(tokenizer)``). A hub name that
    cannot be fetched (no network, ``HF_HUB_OFFLINE=1``, not in the cache) raises RuntimeError
    saying so, instead of the library's long traceback.
    """
    cls = _tokenizer_class()
    path = Path(name_or_dir)
    if path.is_dir():
        tok = cls.from_pretrained(str(path))
    elif path.exists() or str(name_or_dir).startswith((".", "/", "~")):
        raise FileNotFoundError(f"tokenizer directory {str(name_or_dir)!r} does not exist")
    else:
        try:
            try:  # the local HF cache first: no network round trips (and their retries)
                tok = cls.from_pretrained(str(name_or_dir), local_files_only=True)
            except (OSError, ValueError):
                if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0"):
                    raise
                tok = cls.from_pretrained(str(name_or_dir))
        except (OSError, ValueError) as exc:
            raise RuntimeError(
                f"could not load tokenizer {str(name_or_dir)!r}: it is not a local directory and "
                f"the model hub is not reachable or does not have it (offline? set HF_HOME to a "
                f"cache that holds it, or point `tokenizer:` at a saved directory). Cause: {exc}"
            ) from exc
    n_plain = sum(1 for t in tok.get_vocab() if t not in set(tok.all_special_tokens))
    if n_plain == 0 and path.is_dir():
        raise RuntimeError(
            f"tokenizer directory {str(name_or_dir)!r} holds no tokenizer (no vocab.txt or "
            f"tokenizer.json with any token): save one there (tokenizer.save_pretrained) or point "
            f"`tokenizer:` at a directory that holds one"
        )
    if n_plain == 0:
        # transformers 5 silently builds an empty tokenizer when nothing was found offline.
        raise RuntimeError(
            f"tokenizer {str(name_or_dir)!r} loaded with an empty vocabulary: it is not a local "
            f"directory and the model hub is not reachable or does not have it (offline? set "
            f"HF_HOME to a cache that holds it, or point `tokenizer:` at a saved directory)"
        )
    missing = [t for t in extra_special_tokens if t not in tok.get_vocab()]
    if missing:
        tok.add_special_tokens({"additional_special_tokens": list(missing)})
    return tok


def _is_ascii_word(s: str) -> bool:
    return bool(s) and all(ord(c) < 128 and c.isalnum() for c in s)


def decode_tokens(tokenizer, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
    """Decode ids to text the way Chinese is written: no spaces between CJK characters.

    ``BertTokenizer.decode`` puts a space between every token ("你 好"); here word pieces are
    glued ("##"-continuations), and a space is kept only between two ASCII words ("ok go").
    """
    special = set(tokenizer.all_special_ids) if skip_special_tokens else set()
    out: list[str] = []
    for tid in ids:
        tid = int(tid)
        if tid in special:
            continue
        token = tokenizer.convert_ids_to_tokens(tid)
        if token is None:
            continue
        if token.startswith("##") and out:
            out[-1] = out[-1] + token[2:]
        elif out and _is_ascii_word(out[-1][-1:]) and _is_ascii_word(token[:1]):
            out.append(" " + token)
        else:
            out.append(token)
    return "".join(out)
