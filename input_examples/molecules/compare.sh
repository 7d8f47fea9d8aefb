#!/usr/bin/env bash
# Four model families on molecules: train each on 12 molecules (input.json = Deep Density's atom-centred model,
# input_pseudo_atom.json, input_schnet.json, input_painn.json), then compare them on the same grid points of three
# held-out molecules (ethane, trans-butane, ethanol): summary.md/json, parity plot, error histogram, a slice
# through trans-butane and the learning curves.
#   bash input_examples/molecules/compare.sh      # BUDGET minutes of training per family (default 5)
#   COPY_TO=docs/images bash input_examples/molecules/compare.sh   # also copy the pictures there
set -euo pipefail
example=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$example/../.." && pwd)
bash "$repo/tools/install.sh"
export OMP_WAIT_POLICY=PASSIVE
out=${RUN_DIR:-$repo/runs/molecules_compare}
deepcharge compare -i "$example"/input{,_pseudo_atom,_schnet,_painn}.json --budget "${BUDGET:-5}" \
    -s "$example"/data/{C2H6,trans-butane,CH3CH2OH}.CHGCAR.gz -n 100000 \
    --slice-file "$example/data/trans-butane.CHGCAR.gz" --plane xy -o "$out"
if [ -n "${COPY_TO:-}" ]; then bash "$repo/input_examples/copy_comparison.sh" "$out" "$repo/$COPY_TO" molecules; fi
echo "done: $out/summary.md and the figures beside it"
