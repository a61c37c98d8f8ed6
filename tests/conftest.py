"""Shared pytest configuration: the test helper modules and the ``llm_env`` marker.

Helper modules live beside the tests and are imported by name (``from media_utils import
write_video``): this file puts their directory on ``sys.path``, whichever pytest import mode
runs, so no test file touches the path itself. They are ``annotation_sim`` (filled rating
sheets), ``bench_modules`` (the benchmarks under bench/), ``dag_helpers`` (configs and
Snakemake runs in a scratch repo), ``kit_fixtures`` (predictions and splits for the annotation
kits), ``llm_fixtures`` (tiny LLM, BLIP-2 and ChatGLM-6B double directories), ``media_utils``
(videos and local HTTP servers) and ``slurm_cluster`` (a local SLURM).

Tests marked ``llm_env`` exercise the code of the LLM rows (ChatGLM-6B, BLIP-2) and run twice:
in the main env, and under the LLM env's pins (envs/llm.yaml, transformers 4.33) through
tests/test_llm_env.py, which runs ``-m llm_env`` with .venv-llm's interpreter.
"""

import sys
from pathlib import Path

HELPERS = str(Path(__file__).resolve().parent)
if HELPERS not in sys.path:
    sys.path.insert(0, HELPERS)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "llm_env: also run under the LLM env's pins (.venv-llm) by tests/test_llm_env.py")
