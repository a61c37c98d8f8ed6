"""The paper's Table 3 (TikTalk, arXiv 2301.05880): automatic metrics on the TikTalk test set.

Copied from the paper's text; ``tests/test_report.py`` re-parses the table lines from the
paper text (when available) to check every number. All values are x100, like our metrics.
"""

from __future__ import annotations

# Column names as printed in the paper, in the paper's order, and our metric keys for them
# (keys of the metrics json, :data:`tiktalk.formats.METRIC_KEYS`).
TABLE3_COLUMNS = ("BLEU-2", "BLEU-4", "Meteor", "Rouge-L", "CIDEr", "Dist-2", "Dist-3")
TABLE3_METRIC_KEYS = ("bleu_2", "bleu_4", "meteor", "rouge_l", "cider", "dist_2", "dist_3")
COLUMN_FOR_KEY = dict(zip(TABLE3_METRIC_KEYS, TABLE3_COLUMNS))

# Row type groups, in the paper's order (upper part: baselines; lower part: ablations).
TABLE3_TYPES = {
    "T baselines": ("DialoGPT", "ChatGLM-6B"),
    "V+T baselines": ("Livebot", "BLIP-2_Img", "BLIP-2_Video", "Maria"),
    "V+T+A baseline": ("Maria+Audio",),
    "V+T+K baseline": ("Maria+C3KG",),
    "Maria ablations": ("text", "Audio+text", "C3KG+text"),
}

_ROWS = (
    # Methods        BLEU-2 BLEU-4 Meteor Rouge-L CIDEr  Dist-2 Dist-3
    ("DialoGPT",     3.76, 0.73, 4.87, 10.43, 13.50, 26.82, 55.36),
    ("ChatGLM-6B",   3.14, 0.95, 3.84,  9.34, 16.73, 36.28, 58.79),
    ("Livebot",      0.33, 0.06, 1.20,  4.40,  5.94,  0.10,  0.12),
    ("BLIP-2_Img",   3.42, 0.87, 3.77,  8.34, 12.05, 38.40, 64.63),
    ("BLIP-2_Video", 3.41, 0.75, 3.72,  8.11, 11.61, 37.32, 62.44),
    ("Maria",        4.31, 1.48, 5.07, 11.60, 26.19, 29.31, 48.04),
    ("Maria+Audio",  3.01, 0.96, 4.15, 10.19, 20.67, 24.60, 41.11),
    ("Maria+C3KG",   4.74, 1.64, 5.32, 11.84, 26.95, 32.82, 54.62),
    ("text",         3.35, 1.18, 4.56, 11.16, 24.90, 26.83, 43.80),
    ("Audio+text",   2.92, 0.95, 4.13, 10.19, 20.52, 23.95, 39.78),
    ("C3KG+text",    4.34, 1.56, 5.09, 11.65, 26.78, 31.24, 51.38),
)

#: paper row name -> {metric key: value}, rows in the paper's order.
TABLE3: dict[str, dict[str, float]] = {
    name: dict(zip(TABLE3_METRIC_KEYS, values)) for name, *values in _ROWS
}
TABLE3_ROWS = tuple(TABLE3)
ROW_TYPE = {row: group for group, rows in TABLE3_TYPES.items() for row in rows}

# What each ablation row removes (paper sec. 4.4): the Maria variant without visual input.
ABLATION_OF = {"text": "Maria", "Audio+text": "Maria+Audio", "C3KG+text": "Maria+C3KG"}

assert tuple(ROW_TYPE) == TABLE3_ROWS, "TABLE3_TYPES must list the rows in the paper's order"


def paper_row(name: str) -> dict[str, float]:
    """The paper's numbers for a Table 3 row; KeyError lists the valid names."""
    try:
        return TABLE3[name]
    except KeyError:
        raise KeyError(
            f"{name!r} is not a row of the paper's Table 3 (rows: {', '.join(TABLE3_ROWS)})"
        ) from None


# ---- Table 4: human evaluation (paper sec. 4.1.2, appendix B) -----------------------------
# Four criteria, each rated 1 (worst) .. 5 (best); 100 random test dialogues; three annotators;
# the score is the mean of the ratings; Fleiss' kappa over the three annotators: 0.52.
TABLE4_CRITERIA = ("Sensible", "Specific", "MM Relevant", "Quality")
TABLE4_SCALE = (1, 5)
TABLE4_DIALOGUES = 100
TABLE4_ANNOTATORS = 3
TABLE4_KAPPA = 0.52
_TABLE4_ROWS = (
    # Methods        Sensible Specific MM-Relevant Quality
    ("DialoGPT",     2.37, 1.91, 1.73, 2.00),
    ("ChatGLM-6B",   2.87, 2.12, 2.07, 2.36),
    ("Livebot",      2.29, 1.03, 1.68, 1.68),
    ("BLIP-2_Img",   2.66, 2.25, 2.03, 2.33),
    ("BLIP-2_Video", 2.79, 2.43, 2.14, 2.48),
    ("Maria",        3.06, 2.27, 2.15, 2.53),
    ("Maria+Audio",  2.98, 2.17, 2.15, 2.45),
    ("Maria+C3KG",   3.29, 2.41, 2.31, 2.71),
)
#: paper row name -> {criterion: mean rating}, rows in the paper's order.
TABLE4: dict[str, dict[str, float]] = {
    name: dict(zip(TABLE4_CRITERIA, values)) for name, *values in _TABLE4_ROWS
}
TABLE4_ROWS = tuple(TABLE4)

# ---- Figure 2(b): responses that cannot be understood without each context source ----------
# TikTalk's bars (sec. 3.3.1): 300 sampled videos, 2,472 responses; a response may need several
# sources, and annotators may skip a response. Text is given as "close to 80%".
FIGURE2_SOURCES = ("vision", "audio", "text", "knowledge")
FIGURE2B_TIKTALK = {"vision": 42.0, "audio": 10.0, "text": 80.0, "knowledge": 34.0}
FIGURE2B_APPROXIMATE = frozenset({"text"})
FIGURE2B_VIDEOS = 300
FIGURE2B_RESPONSES = 2472
# Figure 2(c) splits by the response's level in its comment thread; its TikTalk bars are only
# drawn in the paper (the text: "still 35% utterances are related to vision" at deeper levels).
FIGURE2C_LEVELS = ("Level-2", "Level-3", "Level-4", "Level-5+")
