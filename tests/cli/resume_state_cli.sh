#!/usr/bin/env bash
# Resuming a run folder (issue 15, D5-D8; docs/RELIABILITY.md): a corrupt checkpoint/state.json
# is an error naming it, never a silent restart (D5); every field of state.json is type- and
# range-checked (D6); --resume takes the run's own settings from RUN/config.json and refuses
# flags that would change them (D7); the train_loss of the epoch a resume falls in averages all
# of its batches, as in an uninterrupted run (D8), and so it is judged against the run's first
# batch loss ("scale", issue 18).
set -u
ELM=${ELM_CLI:-build/elm}
PY=/usr/bin/python3
[ -x "$ELM" ] || { echo "SKIP: $ELM not built"; exit 77; }
. "$(dirname "$0")/../testlib.sh"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
# Every resume is bounded: an old reader took "step": -1e18 for a run that never ends, and a
# resume that forgot the run's settings trained the task's defaults (minutes).
train() { timeout 60 "$ELM" train "$@"; }

"$ELM" gen neuronio-teacher --sims 2 --seed 5 --duration-ms 1200 --out "$T/data" >/dev/null 2>&1 \
    || { echo "FAIL: teacher generation"; exit 1; }
# Not the defaults (batch size 8, lr 5e-4, seed 1, ...), so a resume that forgot them shows.
A=(neuronio --data "$T/data" --epochs 2 --batches-per-epoch 3 --batch-size 2 --threads 1
   --set num_memory=2 --set mlp_hidden_size=4 --set eval_samples=1 --lr 3e-3 --seed 9)
"$ELM" train "${A[@]}" --out "$T/ref" 2>"$T/ref.log" && ok || { bad "reference run"; cat "$T/ref.log"; }

# ---- D7, D8: one batch per process, resumed with nothing but --data and --out ----
"$ELM" train "${A[@]}" --out "$T/s" --time-limit 1e-9 2>/dev/null || bad "first batch"
for b in 2 3 4; do
    train neuronio --data "$T/data" --out "$T/s" --resume --time-limit 1e-9 2>"$T/err" \
        || { bad "resume to batch $b: $(cat "$T/err")"; }
done
cp -r "$T/s" "$T/mid" # stopped after batch 4: epoch 2, batch 1 (history of one epoch)
# A flag that changes the run is refused, naming the setting, and nothing is written.
cp "$T/s/config.json" "$T/config.before"
for flag in "--lr 0.01" "--batch-size 8" "--seed 1" "--set num_memory=3" "--epochs 5"; do
    # shellcheck disable=SC2086
    train neuronio --data "$T/data" --out "$T/s" --resume $flag 2>"$T/err"; rc=$?
    [ $rc = 1 ] && grep -q "config.json: the run was trained with .*; resuming it with .* would change the run" "$T/err" \
        && ok || bad "--resume $flag: rc $rc: $(cat "$T/err")"
done
train neuronio --data "$T/data" --out "$T/s" --resume --set num_memory=3 2>"$T/err"
grep -q "the run was trained with model num_memory = 2; resuming it with 3 would" "$T/err" && ok \
    || bad "model option on resume: $(cat "$T/err")"
cmp -s "$T/config.before" "$T/s/config.json" && ok || bad "a refused resume rewrote config.json"
# Speed knobs may change; the earlier --time-limit is not inherited: batches 5 and 6 both run.
train neuronio --data "$T/data" --out "$T/s" --resume --set eval_batch=7 --set checkpoint_every=2 \
    2>"$T/err" && ok || bad "final resume with eval_batch/checkpoint_every: $(cat "$T/err")"
[ -f "$T/s/test_metrics.json" ] && ok || bad "the final resume stopped early: $(tail -2 "$T/err")"
cmp -s "$T/ref/model.safetensors" "$T/s/model.safetensors" && ok \
    || bad "resumed with the run's own settings, the model differs from the uninterrupted run's"
$PY - "$T/ref" "$T/s" <<'EOF' && ok || bad "train_loss after resumes differs (D8)"
import json, sys
a, b = (json.load(open(d + "/metrics.json")) for d in sys.argv[1:])
la, lb = [r["train_loss"] for r in a], [r["train_loss"] for r in b]
assert la == lb, (la, lb)
EOF

# ---- D5, D6: a corrupt state.json is an error naming it; the run folder is left as it was ----
ST=$T/mid/checkpoint/state.json
cp "$ST" "$T/state.good"
try_state() { # try_state WHAT PATTERN: resume $T/mid with the state.json just written
    local what=$1 pat=$2
    (cd "$T/mid" && find . -type f ! -name state.json -exec md5sum {} + | sort) >"$T/sum.before"
    train neuronio --data "$T/data" --out "$T/mid" --resume 2>"$T/err"; local rc=$?
    (cd "$T/mid" && find . -type f ! -name state.json -exec md5sum {} + | sort) >"$T/sum.after"
    if [ $rc != 1 ]; then bad "$what: exit $rc (want 1): $(tail -2 "$T/err")"; return; fi
    grep -q -- "^elm: error: $ST: $pat" "$T/err" && ok || bad "$what: $(cat "$T/err")"
    cmp -s "$T/sum.before" "$T/sum.after" && ok || bad "$what: the run folder changed"
    grep -q "starting from scratch" "$T/err" && bad "$what: started from scratch" || ok
}
: >"$ST"
try_state "empty state.json" "invalid JSON near byte 0"
echo 'garbage{' >"$ST"
try_state "garbage state.json" "invalid JSON"
edit_state() { # edit_state PYTHON-STATEMENT-ON-s
    $PY - "$T/state.good" "$ST" "$1" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
exec(sys.argv[3])
open(sys.argv[2], "w").write(json.dumps(s) if not isinstance(s, str) else s)
EOF
}
for case in 's["step"] = -1e18' 's["step"] = 1e300' 's["step"] = 3.7' 's["step"] = "4"' \
    's["step"] = 0' 's["step"] = 7'; do
    edit_state "$case"
    try_state "$case" "malformed checkpoint state: 'step' must be an integer in \[1, 6\]"
done
edit_state 's["history"] = 5'
try_state 'history 5' "malformed checkpoint state: 'history' must be an array of at most 1 epochs"
edit_state 's["history"] = [5]'
try_state 'history [5]' "malformed checkpoint state: 'history' must hold one object per epoch"
edit_state 's["model"] = "../../ref/model.safetensors"'
try_state 'model path' "malformed checkpoint state: 'model' and 'optim' must be \"step-4.model.safetensors\""
edit_state 's["best_epoch"] = 9'
try_state 'best_epoch 9' "malformed checkpoint state: 'best_epoch' must be an integer in \[-1, 1\]"
edit_state 'del s["best"]'
try_state 'best missing' "malformed checkpoint state: 'best' must be a finite number"
edit_state 's["epoch_batches"] = 2'
try_state 'epoch_batches 2' "malformed checkpoint state: 'epoch_loss' must be finite and 'epoch_batches' an integer in \[0, 1\]"
for case in 's["scale"] = -1' 's["scale"] = 0.001' 's["scale"] = "1"' 's["scale"] = None'; do
    edit_state "$case"
    try_state "$case" "malformed checkpoint state: 'scale' must be a finite number of at least 0.01"
done
for case in 's["elapsed"] = -1' 's["elapsed"] = "1"' 's["elapsed"] = None'; do
    edit_state "$case"
    try_state "$case" "malformed checkpoint state: 'elapsed' must be a finite number of seconds, at least 0"
done
edit_state 's["stepp"] = 4'
try_state 'unknown field' "malformed checkpoint state: unknown field 'stepp'"
edit_state 's = "[1, 2]"'
try_state 'an array' "malformed checkpoint state: not a JSON object"
# The good state resumes (the checks above refuse nothing valid).
cp "$T/state.good" "$ST"
cp -r "$T/mid" "$T/clock"
train neuronio --data "$T/data" --out "$T/mid" --resume 2>"$T/err" && ok || bad "good state: $(cat "$T/err")"
cmp -s "$T/ref/model.safetensors" "$T/mid/model.safetensors" && ok || bad "mid run differs from the reference"
# The run's clock carries over a resume: the state's "elapsed" (here 1000 s before the resume)
# starts the resumed process's elapsed_seconds and train_seconds; epoch 1 keeps its own row.
$PY - "$T/clock/checkpoint/state.json" <<'EOF' || bad "state.json of the current format has no 'elapsed'"
import json, sys
s = json.load(open(sys.argv[1]))
assert 0 <= s["elapsed"] < 1000, s.get("elapsed")
s["elapsed"] = 1000
json.dump(s, open(sys.argv[1], "w"))
EOF
train neuronio --data "$T/data" --out "$T/clock" --resume 2>"$T/err" && ok || bad "clock resume: $(cat "$T/err")"
$PY - "$T/clock" <<'EOF' && ok || bad "elapsed_seconds/train_seconds do not count the time before the resume"
import json, sys
m = json.load(open(sys.argv[1] + "/metrics.json"))
t = json.load(open(sys.argv[1] + "/test_metrics.json"))
assert m[0]["elapsed_seconds"] < 1000 <= m[1]["elapsed_seconds"], m
assert t["train_seconds"] >= 1000, t
EOF
finish
