"""Automatic metrics (paper sec. 4.1): BLEU, METEOR, ROUGE-L, CIDEr via nlg-eval's scorers
(pycocoevalcap) on character-tokenized Chinese, and Dist-n. See :mod:`tiktalk.metrics.evaluate`."""

from tiktalk.metrics.evaluate import PROTOCOLS, evaluate, evaluate_files, format_table
from tiktalk.metrics.tokenize import char_tokenize

__all__ = ["PROTOCOLS", "evaluate", "evaluate_files", "format_table", "char_tokenize"]
