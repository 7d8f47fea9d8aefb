#!/usr/bin/env bash
# Descriptor or GNN for Si64? Train the four model families one-shot on si64_0 (input.json, input_schnet.json,
# input_painn.yaml, input_atom_centred.json) for the same training time each (BUDGET minutes, default 8; see
# training.time_budget), then compare them on the same grid points of si64_1..5: summary.md/json, parity plot, error
# histogram, a slice through si64_4, the learning curves and accuracy against predict speed. Rerun after an
# interruption: finished models are kept, an interrupted training continues. The README's pictures come from here:
#   bash input_examples/si64_one_shot/compare.sh                # see README for its duration
#   COPY_TO=docs/images bash input_examples/si64_one_shot/compare.sh   # also refresh the README's PNGs
# Already trained? `deepcharge compare -m A.pth B.pth C.pth -c dirA dirB dirC -s ...` compares frozen models.
set -euo pipefail
example=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$example/../.." && pwd)
bash "$repo/tools/install.sh"
export OMP_WAIT_POLICY=PASSIVE
out=${RUN_DIR:-$repo/runs/si64_compare}
deepcharge compare -i "$example/input.json" "$example/input_schnet.json" "$example/input_painn.yaml" \
    "$example/input_atom_centred.json" \
    --budget "${BUDGET:-8}" -s "$example"/data/si64_{1,2,3,4,5}.CHGCAR.gz -n 50000 --slice-file "$example/data/si64_4.CHGCAR.gz" \
    --plane xy --position 0.125 -o "$out"
if [ -n "${COPY_TO:-}" ]; then bash "$repo/input_examples/copy_comparison.sh" "$out" "$repo/$COPY_TO" si64; fi
echo "done: $out/summary.md and the figures beside it"
