#!/usr/bin/env bash
# Install deepcharge (idempotent), check its style with ruff and run its test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install.sh
export OMP_WAIT_POLICY=PASSIVE
"${PYTHON:-python3}" -m ruff check deepcharge tests tools   # house style: pyproject.toml [tool.ruff]
exec "${PYTHON:-python3}" -m pytest -q "$@"
