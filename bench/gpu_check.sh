#!/usr/bin/env bash
# Every check that needs a GPU, as one prepared script for a GPU machine (bench/gpu_check.py):
# the trainer's AMP loop, DDP over NCCL on every visible GPU, feature extraction on CUDA and the
# whole demo DAG on CUDA. Prints PASS/FAIL with throughput for each; exits non-zero if any
# failed. Without a CUDA GPU it says so in one line and exits 2.
#   bash bench/gpu_check.sh            # after `bash tools/setup.sh`
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    echo "gpu_check: no CUDA GPU visible (torch.cuda.is_available() is False): nothing to check"
    exit 2
fi
"$PY" -c 'import torch; print("gpu_check:", torch.cuda.device_count(), "x", torch.cuda.get_device_name(0), "torch", torch.__version__)'
failed=0
for check in amp ddp extract demo; do
    "$PY" bench/gpu_check.py "$check" || failed=$((failed + 1))
done
echo "gpu_check: $failed check(s) failed"
exit $((failed > 0))
