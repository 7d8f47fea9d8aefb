#!/usr/bin/env bash
# Four model families on liquid water, one-shot: train each on water_0 (input.json = pseudo-atom, input_trainable.json
# = pseudo-atom with trainable embedding nets, input_schnet.json,
# input_painn.json, input_atom_centred.json) for the same training time (BUDGET minutes, default 5; see
# training.time_budget), then compare them on the same grid points of water_1 and water_2 (48 molecules, a larger
# box than the training one): summary.md/json, parity plot, error histogram, a slice through water_1, the learning
# curves and accuracy against predict speed. A rerun keeps finished models and continues an interrupted training.
#   bash input_examples/water_one_shot/compare.sh
#   COPY_TO=docs/images bash input_examples/water_one_shot/compare.sh   # also copy the pictures there
set -euo pipefail
example=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$example/../.." && pwd)
bash "$repo/tools/install.sh"
export OMP_WAIT_POLICY=PASSIVE
out=${RUN_DIR:-$repo/runs/water_compare}
deepcharge compare -i "$example"/input{,_trainable,_schnet,_painn,_atom_centred}.json --budget "${BUDGET:-5}" \
    -s "$example"/data/water_{1,2}.CHGCAR.gz -n 50000 --slice-file "$example/data/water_1.CHGCAR.gz" \
    --plane xy --position 0.5 -o "$out"
if [ -n "${COPY_TO:-}" ]; then bash "$repo/input_examples/copy_comparison.sh" "$out" "$repo/$COPY_TO" water; fi
echo "done: $out/summary.md and the figures beside it"
