#!/usr/bin/env bash
# Quantum ESPRESSO end to end: train one-shot on QE's si64_0 density (charge-density.dat and the
# data-file-schema.xml beside it, as pw.x wrote them; tools/qe_data.py made them), test on si64_1 and si64_5 (with the
# error's Hartree energy, which says more than ε_mae about a start: README "Starting pw.x from a prediction"),
# write si64_1's prediction as pw.x reads it, and, where pw.x is installed, run pw.x on si64_1 from its own start
# and from the prediction (2 processes; about 4 min each on 2 cores) and print both records.
#   bash input_examples/qe_si64/run.sh        # outputs in runs/qe_si64_example (or $RUN_DIR)
set -euo pipefail
example=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$example/../.." && pwd)
bash "$repo/tools/install.sh"
run_dir=${RUN_DIR:-$repo/runs/qe_si64_example}
mkdir -p "$run_dir"
cd "$run_dir"
rm -f checkpoint model.ckpt*.pt lcurve.out
deepcharge train "$example/input.yaml"
deepcharge freeze -c model.ckpt-best.pt -o frozen_model.pth
deepcharge test -m frozen_model.pth -s "$example"/data/si64_{1,5}.save/charge-density.dat.gz --json test.json
# the XML beside the output gives predict the cell and QE's cut-off (ecutrho); --ecutrho RY does without it
mkdir -p predicted/si64_1.save
cp "$example/data/si64_1.save/data-file-schema.xml" predicted/si64_1.save/
deepcharge predict -m frozen_model.pth -s "$example/data/si64_1.save/charge-density.dat.gz" \
    -o predicted/si64_1.save/charge-density.dat
if command -v pw.x > /dev/null; then
    structure="$example/data/si64_1.save/charge-density.dat.gz"
    python "$repo/tools/qe_data.py" -s "$structure" --workdir pw_own_start --np 2
    python "$repo/tools/qe_data.py" -s "$structure" --workdir pw_from_model --np 2 \
        --start predicted/si64_1.save/charge-density.dat
else
    echo "pw.x not found: apt-get install quantum-espresso quantum-espresso-data to run it from the prediction"
fi
echo "done: results in $run_dir (test.json, predicted/si64_1.save/charge-density.dat, pw_*/si64_1/pw.out)"
