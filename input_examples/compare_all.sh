#!/usr/bin/env bash
# The four model families on the three sets at equal training time (README "Comparing backends"): Si64 one-shot,
# water one-shot, molecules (12 → 3), one after another, then accuracy against predict speed for all of them.
# Each study keeps what it finished, so a rerun after an interruption continues.
#   bash input_examples/compare_all.sh                          # BUDGET_SI64 (8), BUDGET_WATER (5), BUDGET_MOLECULES (5) min
#   COPY_TO=docs/images bash input_examples/compare_all.sh      # also copy the pictures and tables there
set -euo pipefail
examples=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$examples/.." && pwd)
BUDGET=${BUDGET_SI64:-8} bash "$examples/si64_one_shot/compare.sh"
BUDGET=${BUDGET_WATER:-5} bash "$examples/water_one_shot/compare.sh"
BUDGET=${BUDGET_MOLECULES:-5} bash "$examples/molecules/compare.sh"
runs=$repo/runs
deepcharge compare -r "$runs"/{si64,water,molecules}_compare -o "$runs/studies"
if [ -n "${COPY_TO:-}" ]; then
    cp "$runs/studies/accuracy_speed.png" "$runs/studies/studies.md" "$repo/$COPY_TO/"
fi
