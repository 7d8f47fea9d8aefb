#!/usr/bin/env bash
# Install deepcharge (idempotent) and run its test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install.sh
export OMP_WAIT_POLICY=PASSIVE
exec "${PYTHON:-python3}" -m pytest -q "$@"
