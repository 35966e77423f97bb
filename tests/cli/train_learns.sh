#!/usr/bin/env bash
# Every task's trainer learns (issue 19): from a fixed seed, a short training run (about a second
# per task) must lower the validation loss by a stated margin below that of the same model before
# training. "Before training" is the same command with --lr 0 (Adam then leaves every parameter
# where the seed put it), so both numbers come from the task's own evaluation. A wrong sign or
# scale in a loss gradient, the optimiser or the schedule makes the loss rise or stall; the
# margins are about half of what a correct trainer reaches here (numbers in docs/TESTING.md):
#   neuronio    soma_RMSE on held-out teacher data  4.39 -> 2.35 mV   must fall below 0.75 x
#   shd         cross-entropy on the tiny fixture   3.05 -> 2.34      must fall by 0.35
#   shd-adding  cross-entropy on 50 pairs           3.08 -> 2.84      must fall by 0.12
#   pathfinder  cross-entropy on 8 images           1.17 -> 0.70      must fall by 0.25
set -u
ELM=${ELM_CLI:-build/elm}
SRC=${ELM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
[ -x "$ELM" ] || { echo "SKIP: $ELM not built"; exit 77; }
. "$SRC/tests/testlib.sh"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
FX=$SRC/tests/fixtures/shd_tiny.h5

# The last epoch's value of column NAME in RUN/metrics.csv.
last() {
    awk -F, -v name="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i; next }
                          { v = $c } END { print (c ? v : "none") }' "$1/metrics.csv" 2>/dev/null || echo none
}
# learns TASK METRIC RULE MARGIN -- train args: baseline (lr 0) and trained runs, then the rule
# "ratio" (trained <= MARGIN * before) or "drop" (trained <= before - MARGIN).
learns() {
    local task=$1 metric=$2 rule=$3 margin=$4; shift 5
    $ELM train "$task" "$@" --out "$T/$task-0" --lr 0 --epochs 1 --batches-per-epoch 1 \
        >/dev/null 2>"$T/$task-0.log" || { bad "$task: baseline run failed: $(tail -3 "$T/$task-0.log")"; return; }
    $ELM train "$task" "$@" --out "$T/$task" >/dev/null 2>"$T/$task.log" \
        || { bad "$task: training run failed: $(tail -3 "$T/$task.log")"; return; }
    local before after
    before=$(last "$T/$task-0" "$metric"); after=$(last "$T/$task" "$metric")
    if awk -v b="$before" -v a="$after" -v r="$rule" -v m="$margin" \
        'BEGIN { ok = (b + 0 == b && a + 0 == a) && (r == "ratio" ? a <= m * b : a <= b - m); exit !ok }'; then
        ok; echo "$task: validation $metric $before -> $after ($rule $margin)"
    else
        bad "$task: validation $metric $before -> $after: not lowered by the margin ($rule $margin)"
    fi
}

$ELM gen neuronio-teacher --sims 3 --seed 5 --duration-ms 3000 --out "$T/nio" >/dev/null 2>&1 &&
$ELM gen neuronio-teacher --sims 2 --seed 6 --duration-ms 3000 --out "$T/niov" >/dev/null 2>&1 &&
$ELM gen pathfinder --n 80 --seed 5 --contour-length 6 --threads 1 --out "$T/pf" >/dev/null 2>&1 ||
    { echo "FAIL: data generation"; exit 1; }
mkdir -p "$T/shd"; ln -s "$FX" "$T/shd/shd_train.h5"; cp "$FX" "$T/shd/shd_test.h5"

common=(--threads 1 --seed 3)
learns neuronio soma_RMSE ratio 0.75 -- --data "$T/nio" --valid "$T/niov" --epochs 4 \
    --batches-per-epoch 25 --batch-size 8 --set num_memory=4 --lr 1e-2 "${common[@]}"
learns shd loss drop 0.35 -- --data "$T/shd" --valid "$FX" --epochs 10 --batches-per-epoch 5 \
    --batch-size 10 --set num_memory=8 --set input_dropout=0 --lr 3e-2 "${common[@]}"
learns shd-adding loss drop 0.12 -- --data "$T/shd" --valid "$FX" --epochs 10 \
    --batches-per-epoch 5 --batch-size 10 --set num_memory=8 --set input_dropout=0 \
    --set eval_samples=50 --lr 3e-2 "${common[@]}"
learns pathfinder loss drop 0.25 -- --data "$T/pf/pathfinder32/curv_baseline" --epochs 6 \
    --batch-size 16 --set num_memory=4 --set mlp_hidden_size=8 --lr 3e-2 "${common[@]}"
finish
