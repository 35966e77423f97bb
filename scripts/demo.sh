#!/usr/bin/env bash
# The main job on the built-in default, no downloads: simulate the teacher neuron, train a
# Branch-ELM on it (d_m 15, 45 branches x 100 synapses, neuronio routing) for under a minute,
# evaluate it on held-out simulations and draw the paper's Figure-2 style plot.
#   bash scripts/demo.sh [OUT]        (OUT defaults to runs/demo)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/demo}
ELM=build/elm
[ -x "$ELM" ] || make
DATA=$OUT/data
mkdir -p "$OUT"
if [ ! -d "$DATA/train" ]; then
    $ELM gen neuronio-teacher --sims 128 --seed 1 --out "$DATA/train"
    $ELM gen neuronio-teacher --sims 8 --seed 2 --out "$DATA/valid"
    $ELM gen neuronio-teacher --sims 16 --seed 3 --out "$DATA/test"
fi
# About 40 seconds of training on two idle cores (20,000 batches of 8 x 500 ms); --resume
# continues an interrupted run.
$ELM train neuronio --data "$DATA/train" --valid "$DATA/valid" --out "$OUT/run" \
    --epochs 8 --batches-per-epoch 2500 --lr 2e-3 --threads 2 --resume
$ELM eval neuronio --model "$OUT/run" --data "$DATA/test" | tee "$OUT/test_metrics.txt"
$ELM plot neuronio --model "$OUT/run" --data "$DATA/test" --sim 0 --out "$OUT/neuronio.png"
echo "demo: model in $OUT/run, metrics in $OUT/test_metrics.txt, plot in $OUT/neuronio.png"
