"""The LLM rows without conda: ``TIKTALK_PYTHON_<ENV>`` runs a baseline's job script under its env's
interpreter (tiktalk.workflow.run_in_baseline_env), and the rehearsal's ChatGLM-6B (the interface
double, built by tiktalk.rehearsal.weights) loads there through the pipeline's loading code."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tiktalk.rehearsal.weights import build_rehearsal_weights

ROOT = Path(__file__).resolve().parents[1]
LLM_PYTHON = ROOT / ".venv-llm" / "bin" / "python"

SCRIPT = """
import json, sys
from tiktalk.workflow import run_in_baseline_env
run_in_baseline_env(json.loads(sys.argv[1]))
import transformers
print(json.dumps({"prefix": sys.prefix, "transformers": transformers.__version__}))
sys.exit(int(sys.argv[2]))
"""


def _llm_python() -> Path:
    assert LLM_PYTHON.exists(), f"{LLM_PYTHON} is missing: run tools/setup.sh (it builds the LLM env)"
    return LLM_PYTHON


def _run(tmp_path: Path, baseline: dict, rc: int = 0, **env) -> subprocess.CompletedProcess:
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    full = {k: v for k, v in os.environ.items() if k not in ("TIKTALK_PYTHON_LLM", "TIKTALK_IN_ENV")}
    full.update(env, PYTHONPATH=str(ROOT / "src"))
    return subprocess.run([sys.executable, str(script), json.dumps(baseline), str(rc)], env=full,
                          capture_output=True, text=True, timeout=120)


def test_a_baseline_with_env_runs_under_its_interpreter(tmp_path):
    out = _run(tmp_path, {"family": "causal_lm", "env": "llm"}, rc=3, TIKTALK_PYTHON_LLM=str(_llm_python()))
    assert out.returncode == 3, out.stderr[-2000:]                   # the job's status is the child's
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1, out.stdout                                # the script ran once, there
    got = json.loads(lines[0])
    assert got["transformers"].startswith("4.33.") and Path(got["prefix"]) == LLM_PYTHON.parents[1]


@pytest.mark.parametrize("baseline, env", [
    ({"family": "causal_lm", "env": "llm"}, {}),                                  # no interpreter set
    ({"family": "maria"}, {"TIKTALK_PYTHON_LLM": str(LLM_PYTHON)}),               # no env: stays here
])
def test_otherwise_the_job_runs_in_place(tmp_path, baseline, env):
    out = _run(tmp_path, baseline, **env)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout)
    assert not got["transformers"].startswith("4.33.") and got["prefix"] == sys.prefix


def test_a_missing_interpreter_is_an_error_naming_the_variable(tmp_path):
    missing = tmp_path / "nope" / "python"
    out = _run(tmp_path, {"family": "blip2", "env": "llm"}, TIKTALK_PYTHON_LLM=str(missing))
    assert out.returncode != 0 and "TIKTALK_PYTHON_LLM=" in out.stderr and "no such interpreter" in out.stderr


LOAD = """
import json, sys, torch
from tiktalk.models import llm_loading
path = sys.argv[1]
tok = llm_loading.load_pretrained_tokenizer(path, None, True)
lm = llm_loading.load_pretrained_lm(path, trust_remote_code=True, dtype=torch.float16)
ids = tok("今天天气很好，是红色的")["input_ids"]
print(json.dumps({"cls": type(lm).__name__, "dtype": str(next(lm.parameters()).dtype),
                  "unk": tok.unk_token_id in ids, "n": len(ids), "vocab": lm.config.vocab_size,
                  "pieces": tok.sp_tokenizer.num_tokens}))
"""


def test_the_rehearsal_chatglm_loads_in_the_llm_env_as_the_real_one(tmp_path):
    """Remote code (auto_map AutoModel), the sentencepiece tokenizer and the fp16 .bin shards
    through tiktalk.models.llm_loading, under transformers 4.33."""
    build_rehearsal_weights(tmp_path, names=["chatglm-6b"])
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_MODULES_CACHE": str(tmp_path / "hf_modules")}
    out = subprocess.run([str(_llm_python()), "-c", LOAD, str(tmp_path / "chatglm-6b")], env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["cls"] == "ChatGLMForConditionalGeneration" and got["dtype"] == "torch.float16"
    # every character is a piece: the word start "▁", 11 characters, [gMASK] <sop>; none unknown
    assert not got["unk"] and got["n"] == 1 + 11 + 2 and got["vocab"] == got["pieces"] > 20000
