"""Shared pytest configuration: the ``llm_env`` marker.

Tests marked ``llm_env`` exercise the code of the LLM rows (ChatGLM-6B, BLIP-2) and run twice:
in the main env, and under the LLM env's pins (envs/llm.yaml, transformers 4.33) through
tests/test_llm_env.py, which runs ``-m llm_env`` with .venv-llm's interpreter.
"""


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "llm_env: also run under the LLM env's pins (.venv-llm) by tests/test_llm_env.py")
