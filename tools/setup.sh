#!/usr/bin/env bash
# Create .venv/ at the repo root and install the pipeline (idempotent; ~3 min the first time),
# plus .venv-llm/ with the LLM env's pins (~20 s).
# torch/torchvision/torchaudio are pinned to 2.9.1 / 0.24.1 / 2.9.x: the newest torchaudio
# line that still installs beside a torchvision that imports (README "Installation").
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
pip() { .venv/bin/python -m pip "$@"; }
if ! .venv/bin/python -c "import torch, torchvision, torchaudio" 2>/dev/null; then
    echo "[setup] installing torch 2.9.1 + torchvision 0.24.1 + torchaudio 2.9"
    pip install -q torch==2.9.1 torchvision==0.24.1
    pip install -q torch==2.9.1 'torchaudio==2.9.*'
fi
echo "[setup] installing the tiktalk package and its pinned dependencies"
pip install -q -e '.[test]'
# The LLM env (envs/llm.yaml: transformers 4.33 for ChatGLM-6B's remote code) as a second venv,
# .venv-llm, for the tests that run the LLM rows' code under those pins (tests/test_llm_env.py).
# It installs only what envs/llm.yaml pins differently; everything else (torch, numpy, pytest...)
# is shared from .venv through a .pth line that site.py appends AFTER .venv-llm's own
# site-packages, so .venv-llm's transformers/tokenizers/peft/... shadow .venv's.
if [ ! -x .venv-llm/bin/python ]; then      # the same interpreter as .venv (shared packages)
    "$(.venv/bin/python -c 'import sys; print(sys._base_executable)')" -m venv .venv-llm
fi
purelib() { "$1" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }
llm_site=$(purelib .venv-llm/bin/python)
printf '%s\n' "$(pwd)/src" "$(purelib .venv/bin/python)" > "$llm_site/zz_tiktalk_shared.pth"
mapfile -t llm_pins < <(.venv/bin/python -c '
import sys, yaml
env = yaml.safe_load(open("envs/llm.yaml"))
pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
print("\n".join(pip))')
echo "[setup] LLM env .venv-llm: ${llm_pins[*]}"
# (pip lists .venv's packages that want transformers 5 as conflicts: expected, they are never
# imported there; the log is shown only when the install fails)
if ! .venv-llm/bin/python -m pip install -q "${llm_pins[@]}" > .venv-llm/pip-install.log 2>&1; then
    cat .venv-llm/pip-install.log >&2
    exit 1
fi
.venv-llm/bin/python -c 'import transformers, sentencepiece; print("[setup] .venv-llm: transformers", transformers.__version__)'
# Debian packages: a Java runtime for METEOR (pycocoevalcap runs a Java 1.8+ jar), and headless
# Chromium with its WebDriver for the rating pages' browser tests (tests/test_rating_page_browser.py).
# Only what is missing is installed, with one apt-get update.
apt_pkgs=()
command -v java >/dev/null 2>&1 || apt_pkgs+=(openjdk-17-jre-headless)
command -v chromium >/dev/null 2>&1 || apt_pkgs+=(chromium)
command -v chromedriver >/dev/null 2>&1 || apt_pkgs+=(chromium-driver)
if [ ${#apt_pkgs[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "[setup] installing ${apt_pkgs[*]}"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends "${apt_pkgs[@]}" >/dev/null
    else
        echo "[setup] WARNING: missing ${apt_pkgs[*]} (Java 8+ for METEOR; chromium and" \
             "chromium-driver for the rating pages' browser tests, which are skipped without them)" >&2
    fi
fi
echo "[setup] done: $(.venv/bin/python -c 'import tiktalk, torch; print("tiktalk", tiktalk.__version__, "torch", torch.__version__)')"
