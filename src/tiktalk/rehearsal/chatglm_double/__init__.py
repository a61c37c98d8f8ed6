"""ChatGLM-6B interface double: the remote code of a tiny model with THUDM/chatglm-6b's contract.

The three modules are written, as they are, into a model directory next to its ``config.json``
(``auto_map``) by :func:`tiktalk.rehearsal.llm.write_chatglm`, and loaded from there with
``trust_remote_code`` exactly as the real ChatGLM-6B is: they are model files, not part of the
pipeline (nothing in the package imports them but that builder, for ``SPECIAL_PIECES``). Like the
real tokenizer, theirs loads only under transformers <= 4.33 (the LLM env, envs/llm.yaml).
"""
