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
# pip's editable install takes about 15 s even when nothing changed: skip it when this checkout is what the
# interpreter imports (asked from / , where this checkout's folder cannot shadow the installed one) and
# pyproject.toml is the one it was installed from
stamp=".install-stamp"
state="$("$PYTHON" -c 'import sys; print(sys.executable)') $(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$state" ] && \
        (repo=$PWD && cd / && "$PYTHON" -c "import deepcharge, sys; sys.exit(not deepcharge.__file__.startswith('$repo/'))") \
        2>/dev/null; then
    exit 0
fi
"$PYTHON" -m pip install --quiet -e ".[test]"
echo "$state" > "$stamp"
