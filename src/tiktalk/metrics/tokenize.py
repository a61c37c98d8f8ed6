"""Character-level tokenization of Chinese text for the automatic metrics.

Every non-whitespace code point is one token; tokens are joined by a single space; nothing
is lowercased or otherwise normalised. nlg-eval itself does no tokenization (it only strips
lines and its scorers split on spaces), so this is the whole text preparation.
"""

from __future__ import annotations


def char_tokens(text: str) -> list[str]:
    """The tokens of ``text``: each non-whitespace code point, in order."""
    return [ch for ch in text if not ch.isspace()]


def char_tokenize(text: str) -> str:
    """``text`` as space-separated characters: ``"你好 啊"`` -> ``"你 好 啊"``.

    All whitespace (including newlines and other Unicode line separators) is dropped, so the
    result never contains a line break and never has leading, trailing or double spaces.
    """
    if not isinstance(text, str):
        raise TypeError(f"expected str, got {type(text).__name__}")
    return " ".join(char_tokens(text))
