#!/usr/bin/env bash
# Install deepcharge and everything it needs into the current Python; safe to run again.
# On a machine without an NVIDIA GPU the CPU build of PyTorch is taken (torch==2.13.0), so pip does not
# pull a multi-GB CUDA build; with a GPU, pip's default (CUDA) build is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c "import torch" >/dev/null 2>&1; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
        "$PYTHON" -m pip install --quiet torch
    else
        "$PYTHON" -m pip install --quiet "torch==2.13.0"
    fi
fi
"$PYTHON" -m pip install --quiet -e ".[test]"
