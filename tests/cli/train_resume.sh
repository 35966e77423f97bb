#!/usr/bin/env bash
# Training survives faults (issue 7): a run killed with SIGKILL at several moments and resumed
# ends with exactly the model of an uninterrupted run; a non-finite loss stops the run naming the
# batch and keeps the last good checkpoint; an unwritable output folder is refused up front.
set -u
ELM=${ELM_CLI:-build/elm}
[ -x "$ELM" ] || { echo "SKIP: $ELM not built"; exit 77; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok() { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL: $*"; }

$ELM gen neuronio-teacher --sims 3 --seed 5 --duration-ms 2000 --out "$T/data" >/dev/null 2>&1 \
    || { echo "FAIL: teacher generation"; exit 1; }
ARGS=(neuronio --data "$T/data" --epochs 3 --batches-per-epoch 40 --batch-size 8 --threads 1
      --set num_memory=3 --set checkpoint_every=4 --lr 3e-3 --seed 9)

t0=$(date +%s.%N)
$ELM train "${ARGS[@]}" --out "$T/ref" 2>"$T/ref.log" && ok || { bad "reference run"; cat "$T/ref.log"; }
W=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')

# Kill after fractions of the uninterrupted run's wall time W (so the test means the same on a
# fast machine and under a sanitizer), resuming each time; then let a last resume finish.
kills=0
for frac in 0.1 0.15 0.2 0.25 0.3 0.35 0.4; do
    [ -f "$T/killed/test_metrics.json" ] && break
    $ELM train "${ARGS[@]}" --out "$T/killed" --resume 2>>"$T/killed.log" &
    pid=$!
    sleep "$(awk -v w="$W" -v f="$frac" 'BEGIN { print w * f }')"
    if kill -9 "$pid" 2>/dev/null; then kills=$((kills+1)); fi
    wait "$pid" 2>/dev/null
done
$ELM train "${ARGS[@]}" --out "$T/killed" --resume 2>>"$T/killed.log" && ok || { bad "final resume"; tail "$T/killed.log"; }
echo "killed $kills times (uninterrupted run: $W s)"
[ "$kills" -ge 3 ] && ok || bad "the run finished before it could be killed three times (W = $W s)"
cmp -s "$T/ref/model.safetensors" "$T/killed/model.safetensors" && ok \
    || bad "best model differs after kill/resume"
ref_last=$(ls "$T/ref/checkpoint" | grep 'model.safetensors$')
got_last=$(ls "$T/killed/checkpoint" | grep 'model.safetensors$')
[ "$ref_last" = "$got_last" ] && cmp -s "$T/ref/checkpoint/$ref_last" "$T/killed/checkpoint/$got_last" \
    && ok || bad "final checkpoint differs ($ref_last vs $got_last)"
[ "$(ls "$T/killed/checkpoint" | wc -l)" -eq 3 ] && ok || bad "stale checkpoint files left: $(ls "$T/killed/checkpoint")"

# A non-finite loss or gradient (a memory gain that overflows float32; learning rates that would
# do it are refused up front since issue 16) stops with a clear message and saves no model.
# Stopping a diverging run with a usable checkpoint: tests/cli/train_guard_cli.sh.
$ELM train "${ARGS[@]}" --out "$T/nan" --set lambda_value=1e38 2>"$T/nan.log"; rc=$?
[ $rc -eq 1 ] && grep -q "non-finite [a-z]* at epoch 1, batch 1 .*no checkpoint had been written" "$T/nan.log" \
    && [ ! -e "$T/nan/model.safetensors" ] && ok || { bad "NaN stop (rc $rc)"; cat "$T/nan.log"; }

# Unwritable output: refused before any training.
$ELM train "${ARGS[@]}" --out /proc/elm-cannot-write 2>"$T/ro.log"; rc=$?
[ $rc -eq 1 ] && grep -q "/proc/elm-cannot-write" "$T/ro.log" && ! grep -q "epoch" "$T/ro.log" && ok \
    || { bad "unwritable --out (rc $rc)"; cat "$T/ro.log"; }

# Unknown knob: refused.
$ELM train "${ARGS[@]}" --out "$T/typo" --set num_memmory=3 2>"$T/typo.log"; rc=$?
[ $rc -eq 1 ] && grep -q "num_memmory" "$T/typo.log" && ok || bad "unknown knob (rc $rc)"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
