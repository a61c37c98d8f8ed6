"""The LLM rows' code under the LLM env's pins (envs/llm.yaml: transformers 4.33 for ChatGLM-6B).

tools/setup.sh builds .venv-llm from envs/llm.yaml; here the tests marked ``llm_env`` run again
with its interpreter. A missing .venv-llm is a failure, not a skip: the package code the LLM rows
import must keep working under both pin sets.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
LLM_TESTS = ["tests/test_blip2.py", "tests/test_llm_rows.py"]


def llm_python() -> Path:
    py = ROOT / ".venv-llm" / "bin" / "python"
    assert py.exists(), f"{py} is missing: run tools/setup.sh (it builds the LLM env from envs/llm.yaml)"
    return py


def llm_pins() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "envs" / "llm.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return dict(line.split("==") for line in pip)


def test_llm_venv_holds_the_pins_of_envs_llm_yaml():
    pins = llm_pins()
    code = ("import importlib.metadata as m, json, sys; "
            "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))")
    out = subprocess.run([str(llm_python()), "-c", code, *pins], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": ""})
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout) == pins


def test_llm_row_tests_pass_under_the_llm_env(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "HF_MODULES_CACHE": str(tmp_path / "hf_modules"),
           "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(
        [str(llm_python()), "-m", "pytest", "-q", "-m", "llm_env", "-p", "no:cacheprovider",
         "-W", "ignore::FutureWarning", *LLM_TESTS],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    tail = (proc.stdout[-4000:] + proc.stderr[-2000:])
    assert proc.returncode == 0, tail
    summary = proc.stdout.strip().splitlines()[-1]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) >= 10, summary
    assert not re.search(r"skipped|failed|error", summary), summary
