#!/usr/bin/env bash
# --resume really resumes, at the batch where the run stopped (issue 19). Deterministic, without
# kill timing: --time-limit 1e-9 stops every run after exactly one batch with a checkpoint. A run
# that resumes continues from its checkpoint's batch and so writes the checkpoint of the next
# batch; a run that silently restarted from scratch would write batch 1's again. The stepwise run
# then finishes with exactly the model of an uninterrupted run and the same metrics.csv and
# test_metrics.json (time columns aside; issue 18): each epoch's train_loss averages all its
# batches, those before and after each resume, and the validation metrics that are NaN here (the
# AUCs of an evaluation window without output spikes) keep their columns, written `nan`, which
# numpy reads back as NaN. A --resume with no checkpoint says that it starts from scratch.
set -u
ELM=${ELM_CLI:-build/elm}
[ -x "$ELM" ] || { echo "SKIP: $ELM not built"; exit 77; }
. "$(dirname "$0")/../testlib.sh"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT

$ELM gen neuronio-teacher --sims 2 --seed 5 --duration-ms 1200 --out "$T/data" >/dev/null 2>&1 \
    || { echo "FAIL: teacher generation"; exit 1; }
ARGS=(neuronio --data "$T/data" --epochs 2 --batches-per-epoch 3 --batch-size 2 --threads 1
      --set num_memory=2 --set mlp_hidden_size=4 --set eval_samples=1 --lr 3e-3 --seed 9)

state_step() { # the batch the checkpoint in RUN resumes at
    /usr/bin/python3 -c 'import json,sys; print(int(json.load(open(sys.argv[1]))["step"]))' \
        "$1/checkpoint/state.json" 2>/dev/null || echo none
}

$ELM train "${ARGS[@]}" --out "$T/ref" 2>"$T/ref.log" && ok || { bad "reference run"; cat "$T/ref.log"; }

# No checkpoint yet: --resume says it starts from scratch.
$ELM train "${ARGS[@]}" --out "$T/step" --resume --time-limit 1e-9 2>"$T/s0.log"; rc=$?
[ $rc -eq 0 ] && grep -q "no checkpoint in .*starting from scratch" "$T/s0.log" && ok \
    || { bad "first run (rc $rc)"; cat "$T/s0.log"; }
[ "$(state_step "$T/step")" = 1 ] && ok || bad "after one batch the checkpoint is at $(state_step "$T/step"), want 1"

# Each resume must start at the checkpoint's batch and advance it by exactly one.
for want in 2 3 4 5; do
    $ELM train "${ARGS[@]}" --out "$T/step" --resume --time-limit 1e-9 2>"$T/s$want.log"; rc=$?
    [ $rc -eq 0 ] || { bad "resume to batch $want: rc $rc"; cat "$T/s$want.log"; }
    grep -q "resuming .* at batch $((want - 1))\$" "$T/s$want.log" && ok \
        || bad "resume $want does not say 'resuming ... at batch $((want - 1))': $(grep -m1 resum "$T/s$want.log")"
    got=$(state_step "$T/step")
    [ "$got" = "$want" ] && ok || bad "after resuming at batch $((want - 1)) and one more batch the checkpoint is at $got, want $want (a restart from scratch gives 1)"
done
# The last batch, then the end of the run: the model of the uninterrupted run, bit for bit.
$ELM train "${ARGS[@]}" --out "$T/step" --resume 2>"$T/s6.log" && ok || { bad "final resume"; cat "$T/s6.log"; }
grep -q "resuming .* at batch 5\$" "$T/s6.log" && ok || bad "final resume not at batch 5"
cmp -s "$T/ref/model.safetensors" "$T/step/model.safetensors" && ok \
    || bad "the run resumed batch by batch differs from the uninterrupted one"
[ -f "$T/step/test_metrics.json" ] && ok || bad "the resumed run did not finish"
d=$(run_metrics_same "$T/ref" "$T/step") && ok \
    || bad "the run resumed batch by batch wrote other metrics than the uninterrupted one: $d"
# The NaN metrics: 15 columns in every row, the 5 AUC/TP columns NaN in both epochs.
got=$(/usr/bin/python3 -c 'import numpy as np, sys
a = np.loadtxt(sys.argv[1], delimiter=",", skiprows=1, ndmin=2)
print(a.shape, int(np.isnan(a).sum()))' "$T/step/metrics.csv" 2>&1)
[ "$got" = "(2, 15) 10" ] && ok || bad "numpy reads the resumed metrics.csv as $got, want (2, 15) 10"
finish
