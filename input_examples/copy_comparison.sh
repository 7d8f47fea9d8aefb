#!/usr/bin/env bash
# Copy what `deepcharge compare` wrote in OUT (its pictures and summary.md) to DEST as SET_<name>, for the README:
#   bash input_examples/copy_comparison.sh OUT DEST SET
set -euo pipefail
out=$1 dest=$2 set=$3
mkdir -p "$dest"
for name in parity error_hist slice lcurve accuracy_speed; do cp "$out/$name.png" "$dest/${set}_$name.png"; done
cp "$out/summary.md" "$dest/${set}_summary.md"
