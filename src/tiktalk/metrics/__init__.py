"""Automatic metrics (paper sec. 4.1): BLEU, METEOR, ROUGE-L, CIDEr via nlg-eval's scorers
(pycocoevalcap) on character-tokenized Chinese, and Dist-n.

Modules: :mod:`tiktalk.metrics.evaluate` (the protocol: ``evaluate``, ``evaluate_files``,
``evaluate_many``), :mod:`tiktalk.metrics.scorers` (the scorers and the METEOR process),
:mod:`tiktalk.metrics.tokenize` and :mod:`tiktalk.metrics.diversity`. Nothing is re-exported
here, so importing one of them does not import the others.
"""
