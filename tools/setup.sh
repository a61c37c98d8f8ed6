#!/usr/bin/env bash
# Create .venv/ at the repo root and install the pipeline (idempotent; ~3 min the first time).
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
# METEOR (pycocoevalcap) runs a Java 1.8+ jar.
if ! command -v java >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "[setup] installing a Java runtime for METEOR"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null
    else
        echo "[setup] WARNING: no 'java' on PATH: METEOR needs Java 8+ (e.g. openjdk-17-jre-headless)" >&2
    fi
fi
echo "[setup] done: $(.venv/bin/python -c 'import tiktalk, torch; print("tiktalk", tiktalk.__version__, "torch", torch.__version__)')"
