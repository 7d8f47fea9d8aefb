#!/usr/bin/env bash
# Does the ensemble's σ choose better DFT calculations than chance? Runs a loop input (default loop.json: labels of
# largest σ) and its baseline <name>_random.json (the same candidates, labels drawn at random) in RUN_DIR (default
# runs/<name>): sigma/ and random/, each with loop.out (ε_mae on si64_1..5 per iteration), loop.png and a
# record.json per iteration. Iteration 0 (the one-shot si64_0 ensemble) is the same input in both: random/ takes
# sigma/'s rather than training it again. Rerun after an interruption: both resume, no label is computed twice.
#   bash input_examples/si64_one_shot/loop.sh               # 8-atom labels (README "Concurrent learning": timing)
#   bash input_examples/si64_one_shot/loop.sh loop_si64.json  # 64-atom labels
set -euo pipefail
example=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$example/../.." && pwd)
bash "$repo/tools/install.sh"
export OMP_WAIT_POLICY=PASSIVE
name=$(basename "${1:-loop.json}" .json)
out=${RUN_DIR:-$repo/runs/$name}
mkdir -p "$out/sigma" "$out/random"
(cd "$out/sigma" && deepcharge loop "$example/$name.json")
shared=iter.000000/00.train
if [ ! -e "$out/random/$shared/done.json" ]; then
    mkdir -p "$out/random/iter.000000" && rm -rf "${out:?}/random/$shared"
    cp -r "$out/sigma/$shared" "$out/random/$shared"
fi
(cd "$out/random" && deepcharge loop "$example/${name}_random.json")
paste <(echo sigma; cat "$out/sigma/loop.out") <(echo random; cat "$out/random/loop.out") | column -t
