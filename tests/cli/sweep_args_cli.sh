#!/usr/bin/env bash
# `elm sweep` reruns with other training arguments (issue 16, item 3): each point records the
# arguments it was trained with (runs/<point>/sweep_args.json, resolved as `elm train` resolves
# them); a rerun that would reuse a finished point with other arguments is refused before
# anything starts, naming each difference and --force, and leaves sweep.json and the runs as they
# were; knobs that cannot change the model (--time-limit, checkpoint_every) and other spellings of
# the same value are not differences; --force trains the changed points again and records their
# new arguments. Tiny SHD fixture; each point trains in well under a second.
set -u
. "$(dirname "$0")/../testlib.sh"
cli_test_in_tmp
mkdir data data2
for d in data data2; do
    cp "$FIX/shd_tiny.h5" $d/shd_train.h5 && cp "$FIX/shd_tiny.h5" $d/shd_test.h5
done
echo '{"base": {"eval_samples": 4, "batch_size": 4}, "vary": {"num_memory": [1, 2]}}' > g.json
W=(--task shd --grid g.json --out sw --batches-per-epoch 2 --jobs 1 --threads-per-job 1 --no-plot)
mtimes() { stat -c %Y sw/runs/*/model.safetensors | tr '\n' ' '; }

check_cmd_err 0 "" -- "$ELM" sweep "${W[@]}" --data data --epochs 1 --lr 0.001
/usr/bin/python3 - <<'PY' && ok || bad "sweep_args.json: $(cat sw/runs/num_memory=1/sweep_args.json)"
import json
a = json.load(open("sw/runs/num_memory=1/sweep_args.json"))
assert a["task"] == "shd" and a["data"] == "data" and "valid" not in a, a
assert a["train"]["epochs"] == 1 and a["train"]["lr"] == 0.001, a["train"]
assert a["train"]["batch_size"] == 4 and a["model"]["num_memory"] == 1, a
for k in ("threads", "time_limit", "checkpoint_every", "ckpt_stride"):
    assert k not in a["train"], k
assert a["args"] == ["--batches-per-epoch", "2", "--epochs", "1", "--lr", "0.001"], a["args"]
PY
m0=$(mtimes); cp sw/sweep.json sweep0.json

# Other arguments: refused, each difference named, --force pointed to; nothing touched.
check_cmd_err 1 "point 'num_memory=1' was trained with other arguments: epochs 1 (now 2)" -- \
    "$ELM" sweep "${W[@]}" --data data --epochs 2 --lr 0.001
grep -q "nothing was started.*add --force" err && ok || bad "no --force hint: $(cat err)"
check_cmd_err 1 "data data (now data2)" -- "$ELM" sweep "${W[@]}" --data data2 --epochs 1 --lr 0.001
check_cmd_err 1 "lr 0.001 (now 0.002)" -- "$ELM" sweep "${W[@]}" --data data --epochs 1 --lr 0.002
check_cmd_err 1 "test none (now data2/shd_test.h5)" -- \
    "$ELM" sweep "${W[@]}" --data data --epochs 1 --lr 0.001 --test data2/shd_test.h5
[ "$(mtimes)" = "$m0" ] && ok || bad "a refused rerun retrained a point"
cmp -s sw/sweep.json sweep0.json && ok || bad "a refused rerun rewrote sweep.json"

# The same model by other means: another spelling, a time limit, checkpoint_every.
check_cmd_err 0 "2 finished, 0 to run" -- "$ELM" sweep "${W[@]}" --data data --epochs 1 --set lr=1e-3 \
    --time-limit 1000 --set checkpoint_every=7
[ "$(mtimes)" = "$m0" ] && ok || bad "an equivalent rerun retrained a point"

# --force: the changed points train again, with the new arguments recorded.
sleep 1
check_cmd_err 0 "point 'num_memory=1' was trained with other arguments (epochs 1 (now 2)): it starts over" -- \
    "$ELM" sweep "${W[@]}" --data data --epochs 2 --lr 0.001 --force
/usr/bin/python3 - <<'PY' && ok || bad "after --force: $(cat sw/runs/num_memory=2/sweep_args.json)"
import json
for p in ("num_memory=1", "num_memory=2"):
    a = json.load(open("sw/runs/%s/sweep_args.json" % p))
    m = json.load(open("sw/runs/%s/metrics.json" % p))
    assert a["train"]["epochs"] == 2 and len(m) == 2, (p, a["train"], m)
s = json.load(open("sw/sweep.json"))
ta = s["train_args"]
assert ta[ta.index("--epochs") + 1] == "2" and "--force" not in ta, ta
PY
[ "$(mtimes)" != "$m0" ] && ok || bad "--force did not retrain"

# A changed point.json is refused as before, and --force retrains it too.
sed -i 's/"batch_size": 4/"batch_size": 2/' g.json
check_cmd_err 1 "point.json differs from the grid's point 'num_memory=1'.*--force" -- \
    "$ELM" sweep "${W[@]}" --data data --epochs 2 --lr 0.001
check_cmd_err 0 "point.json differs from the grid: point 'num_memory=1' starts over" -- \
    "$ELM" sweep "${W[@]}" --data data --epochs 2 --lr 0.001 --force
grep -q '"batch_size":[[:space:]]*2' sw/runs/num_memory=1/sweep_args.json && ok \
    || bad "point.json change not recorded: $(cat sw/runs/num_memory=1/sweep_args.json)"

echo "sweep_args_cli: $pass passed, $fail failed"
[ $fail -eq 0 ]
