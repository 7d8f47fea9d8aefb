#!/usr/bin/env bash
# Deep Charge one-shot on Si64, end to end: install, train on si64_0 (validated on a held-out slab of it), freeze,
# test on si64_1..5 beside the model before training (its least-squares baseline: what the net adds), predict
# si64_1's density as CHGCAR and cube, plot the learning curve and a parity plot.
#   bash input_examples/si64_one_shot/run.sh          # quick: input_quick.yaml, 1000 steps, tests on 20 000 points
#                                                     # per file (time measured: README "Quick start")
#   FULL=1 bash input_examples/si64_one_shot/run.sh   # full length: input.json, tests on every point
#                                                     # (training time: README "Results")
# Outputs go to runs/si64_one_shot (or $RUN_DIR). Running it again starts the training afresh.
set -euo pipefail
example=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$example/../.." && pwd)
bash "$repo/tools/install.sh"
input="$example/input_quick.yaml"
test_points=20000
if [ "${FULL:-0}" = 1 ]; then
    input="$example/input.json"
    test_points=0
fi
run_dir=${RUN_DIR:-$repo/runs/si64_one_shot}
mkdir -p "$run_dir"
cd "$run_dir"
rm -f checkpoint model.ckpt*.pt lcurve.out
deepcharge train "$input"
# the checkpoint with the lowest validation error (training's log names it), not necessarily the last
deepcharge freeze -c model.ckpt-best.pt -o frozen_model.pth
# the model before training (step 0): the least-squares baseline, the fitting net starting at zero
deepcharge freeze -c model.ckpt-0.pt -o frozen_model_without_net.pth
deepcharge test -m frozen_model.pth -s "$example"/data/si64_{1,2,3,4,5}.CHGCAR.gz -n "$test_points" -d detail \
    --json test.json
deepcharge test -m frozen_model_without_net.pth -s "$example/data/si64_5.CHGCAR.gz" -n "$test_points" \
    --json test_without_net.json
deepcharge predict -m frozen_model.pth -s "$example/data/si64_1.CHGCAR.gz" -o si64_1_predicted.CHGCAR
deepcharge predict -m frozen_model.pth -s "$example/data/si64_1.CHGCAR.gz" -o si64_1_predicted.cube --grid 32 32 32
deepcharge plot lcurve.out -o lcurve.png
deepcharge plot detail.si64_1.out -o parity_si64_1.png
echo "done: results in $run_dir (test.json, test_without_net.json, lcurve.png, parity_si64_1.png, si64_1_predicted.CHGCAR/.cube)"
