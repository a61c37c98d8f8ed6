"""The texts the demo's WordPiece vocabulary is trained on (the ``train_tokenizer`` stage).

Every utterance of the dialogue tables, the C3KG table's heads and tails, the relation labels
the Maria family writes into its knowledge segment (:data:`tiktalk.knowledge.flows.RELATION_TEXT`)
and the ChatGLM prompt template the causal-LM baselines wrap dialogues in
(:func:`tiktalk.models.prompts.chatglm_prompt`), so that none of them falls apart into [UNK].

Kept apart from :mod:`tiktalk.models.tokenizer` (which every baseline imports): the baselines
do not depend on what the vocabulary was trained from, only on the trained vocabulary.
"""

from __future__ import annotations

import os

from tiktalk.data.dialogues import read_dialogues
from tiktalk.knowledge.c3kg import read_c3kg_table
from tiktalk.knowledge.flows import RELATION_TEXT
from tiktalk.models.prompts import chatglm_prompt


def tokenizer_corpus(dialogue_paths, c3kg_path: str | os.PathLike | None = None) -> list[str]:
    """Texts a demo vocabulary is trained on, in a fixed order (see the module docstring)."""
    if isinstance(dialogue_paths, (str, os.PathLike)):
        dialogue_paths = [dialogue_paths]
    texts: list[str] = []
    for path in dialogue_paths:
        for row in read_dialogues(path):
            texts.extend(row["context"])
            texts.extend(row["responses"])
    if c3kg_path:
        table = read_c3kg_table(c3kg_path)
        texts.extend(table["head"].tolist())
        texts.extend(table["tail"].tolist())
    texts.extend(RELATION_TEXT.values())
    texts.append(chatglm_prompt("问", [["问", "答"]], max_history=3))
    return texts
