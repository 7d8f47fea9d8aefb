#!/usr/bin/env bash
# Many snapshots: convert the shipped Si64 and Al32 densities into one HDF5 store, train on six of them with a
# rotating pool, validation and early stopping, freeze the best checkpoint and test it on the held-out two.
#   bash input_examples/si_al_many_snapshots/run.sh
# On several GPUs (or CPU processes), the training line becomes
#   torchrun --nproc_per_node 4 "$(command -v deepcharge)" train input.json
# Outputs go to runs/si_al_many_snapshots (or $RUN_DIR). Running it again rebuilds the store and retrains.
set -euo pipefail
example=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$example/../.." && pwd)
bash "$repo/tools/install.sh"
export OMP_WAIT_POLICY=PASSIVE
rm -f "$example/store.h5"
deepcharge convert "$repo"/input_examples/si64_one_shot/data/si64_*.CHGCAR.gz \
    "$repo"/input_examples/al32_one_shot/data/al32_*.CHGCAR.gz -o "$example/store.h5"
run_dir=${RUN_DIR:-$repo/runs/si_al_many_snapshots}
mkdir -p "$run_dir"
cd "$run_dir"
rm -f checkpoint model.ckpt*.pt lcurve.out
deepcharge train "$example/input.json"
deepcharge freeze -c model.ckpt-best.pt -o frozen_model.pth
deepcharge test -m frozen_model.pth -s "$example/store.h5::si64_4" "$example/store.h5::al32_2" --json test.json
deepcharge plot lcurve.out -o lcurve.png
echo "done: results in $run_dir (test.json, lcurve.png)"
