#!/usr/bin/env bash
# Does the ensemble's σ choose better DFT calculations than chance? Runs loop.json (labels of largest σ) and
# loop_random.json (the same candidates, labels drawn at random) side by side in RUN_DIR (default runs/si64_loop):
# sigma/ and random/, each with loop.out (ε_mae on si64_1..5 per iteration), loop.png and record.json per iteration.
# Iteration 0 (the one-shot si64_0 ensemble) is the same input in both: random/ takes sigma/'s rather than training
# it again. Rerun after an interruption: both loops resume, no label is computed twice.
#   bash input_examples/si64_one_shot/loop.sh        # see README "Concurrent learning" for its duration
set -euo pipefail
example=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$example/../.." && pwd)
bash "$repo/tools/install.sh"
export OMP_WAIT_POLICY=PASSIVE
out=${RUN_DIR:-$repo/runs/si64_loop}
mkdir -p "$out/sigma" "$out/random"
(cd "$out/sigma" && deepcharge loop "$example/loop.json")
shared=iter.000000/00.train
if [ ! -e "$out/random/$shared/done.json" ]; then
    mkdir -p "$out/random/iter.000000" && rm -rf "${out:?}/random/$shared"
    cp -r "$out/sigma/$shared" "$out/random/$shared"
fi
(cd "$out/random" && deepcharge loop "$example/loop_random.json")
paste <(echo sigma; cat "$out/sigma/loop.out") <(echo random; cat "$out/random/loop.out") | column -t
