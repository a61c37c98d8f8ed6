"""The ChatGLM-6B prompt template the causal-LM baselines wrap a dialogue in.

ChatGLM-6B's own fine-tuning recipe (``ptuning/main.py``) turns
``{"prompt", "response", "history": [[q, a], ...]}`` into::

    [Round 0]\\n问：q0\\n答：a0\\n[Round 1]\\n问：q1\\n答：a1\\n...[Round n]\\n问：prompt\\n答：

A TikTalk context ``u1 .. un`` maps to prompt = ``un`` and history = the earlier turns paired
from the newest backwards ((u_{n-2}, u_{n-1}), (u_{n-4}, u_{n-3}), ...); when one oldest turn
is left over it becomes an answer with an empty question (``问：\\n答：u1``), so every turn
keeps its speaker alternation. Only the last ``max_history`` rounds are kept.

Text only (no torch): the tokenizer stage trains the demo vocabulary on this template without
depending on the causal-LM model code (:mod:`tiktalk.models.causal_lm`).
"""

from __future__ import annotations

from typing import Sequence


def context_to_chat(context: Sequence[str]) -> tuple[str, list[list[str]]]:
    """(prompt, history) from TikTalk context turns (see the module docstring)."""
    turns = [str(t) for t in context]
    if not turns:
        return "", []
    prompt, earlier = turns[-1], turns[:-1]
    history: list[list[str]] = []
    i = len(earlier)
    while i >= 2:
        history.append([earlier[i - 2], earlier[i - 1]])
        i -= 2
    if i == 1:
        history.append(["", earlier[0]])
    history.reverse()
    return prompt, history


def chatglm_prompt(prompt: str, history: Sequence[Sequence[str]], max_history: int) -> str:
    """ChatGLM-6B ``ptuning/main.py`` prompt text (last ``max_history`` rounds kept)."""
    history = list(history)[-max_history:] if max_history > 0 else []
    text = ""
    for turn_idx, (old_query, response) in enumerate(history):
        text += "[Round {}]\n问：{}\n答：{}\n".format(turn_idx, old_query, response)
    text += "[Round {}]\n问：{}\n答：".format(len(history), prompt)
    return text


def build_prompt(context: Sequence[str], max_history: int) -> str:
    prompt, history = context_to_chat(context)
    return chatglm_prompt(prompt, history, max_history)
