#!/usr/bin/env bash
# Training guards (issue 16, items 2, 5, 6, 11): a folder holding a run is refused without
# --resume or --force; every knob is range-checked up front; a diverging run stops with a clear
# message and keeps a usable checkpoint; an epoch whose training ran away is never the best; a
# sweep grid's keys are checked before anything starts; train --help shows each task's
# defaults, and every run prints its budget and a time estimate.
set -u
. "$(dirname "$0")/../testlib.sh"
cli_test_in_tmp
"$ELM" gen neuronio-teacher --sims 1 --seed 1 --out nio >/dev/null 2>&1 || bad "gen"
mkdir shd && cp "$FIX/shd_tiny.h5" shd/shd_train.h5 && cp "$FIX/shd_tiny.h5" shd/shd_test.h5
A=(neuronio --data nio --epochs 1 --batches-per-epoch 2 --batch-size 2 --set num_memory=2 --threads 1)

# 2. A finished run is refused (its files untouched); --force starts over; --resume re-evaluates.
check_cmd_err 0 "" -- "$ELM" train "${A[@]}" --out run
cp run/model.safetensors m0
check_cmd_err 1 "run holds a finished run" -- "$ELM" train "${A[@]}" --out run --seed 2
grep -q -- "--resume continues it" err && grep -q -- "--force starts over" err && ok \
    || bad "the refusal does not name --resume and --force: $(cat err)"
cmp -s m0 run/model.safetensors && ok || bad "a refused run changed the model"
check_cmd_err 0 "removed; starting over" -- "$ELM" train "${A[@]}" --out run --seed 2 --force
cmp -s m0 run/model.safetensors && bad "--force did not train a new model" || ok
check_cmd_err 0 "no test data (give --test DIR): no test metrics" -- "$ELM" train "${A[@]}" --out run --seed 2 --resume
check_cmd_err 2 "give one" -- "$ELM" train "${A[@]}" --out run --resume --force
# An unfinished run (stopped by --time-limit with a checkpoint) is refused too.
check_cmd_err 0 "" -- "$ELM" train "${A[@]}" --out half --epochs 3 --set checkpoint_every=1 --time-limit 1e-9
check_cmd_err 1 "half holds an unfinished run" -- "$ELM" train "${A[@]}" --out half
# Other files in the folder are not a run, and --force removes only the run's files.
mkdir mine && echo notes > mine/notes.txt
check_cmd_err 0 "" -- "$ELM" train "${A[@]}" --out mine
check_cmd_err 0 "" -- "$ELM" train "${A[@]}" --out mine --force
[ "$(cat mine/notes.txt)" = notes ] && ok || bad "--force removed a file that is not the run's"

# 5. Ranges, checked before anything runs.
for bad_arg in "--lr -1" "--lr 1e6" "--batch-size 0" "--epochs 0" "--set input_dropout=1" \
    "--set weight_decay=-1" "--set weight_decay=5" "--set seed=-3" "--threads -1"; do
    # shellcheck disable=SC2086
    check_cmd_err 1 "must be \(in\|at least\)" -- "$ELM" train "${A[@]}" --out r5 $bad_arg
done
[ ! -e r5 ] && ok || bad "a refused setting left a run folder"
check_cmd_err 1 "'optimizer' must be one of adam, adamw or adamax, got 'sgd'" -- "$ELM" train "${A[@]}" --out r5 --set optimizer=sgd
check_cmd_err 1 "lr_min (0.1) is above lr (0.01)" -- "$ELM" train "${A[@]}" --out r5 --lr 0.01 --set lr_min=0.1

# 5. Divergence: learning rate 1 on SHD with a wide MLP sends the loss up 100-fold within two
#    batches. The run stops saying so, saves no model, and its checkpoint loads.
S=(shd --data shd --threads 1 --set num_memory=100 --set mlp_hidden_size=400 --lr 1)
check_cmd_err 1 "training diverged at epoch 1, batch 2 .*over 100 times the first batch's" -- \
    "$ELM" train "${S[@]}" --out div --epochs 3 --batches-per-epoch 20 --set checkpoint_every=1
grep -q "no model was saved" err && [ ! -e div/model.safetensors ] && ok || bad "a diverged run saved a model"
"$ELM" info "div/checkpoint/$(ls div/checkpoint | grep model.safetensors | head -1)" >/dev/null 2>&1 \
    && ok || bad "the checkpoint kept after divergence does not load"
# An epoch whose mean training loss is over 10 times the first batch's is never the best: here
# epochs 1 and 2 (lr 1, d_m 20) are, and the model of epoch 3 is selected.
check_cmd_err 0 "not eligible as the best model" -- "$ELM" train shd --data shd --threads 1 \
    --set num_memory=20 --lr 1 --out elig --epochs 3 --batches-per-epoch 20
/usr/bin/python3 -c '
import json
m = json.load(open("elig/metrics.json")); t = json.load(open("elig/test_metrics.json"))
first = [r for r in m]
assert t["best_epoch"] == 3, t["best_epoch"]
assert m[0]["train_loss"] > 10 * 2.9 and m[1]["train_loss"] > 10 * 2.9, [r["train_loss"] for r in m]
' && ok || bad "a diverged epoch was selected: $(grep 'elm: epoch' err)"
# D12 (issue 15): the same run stopped after epoch 2 has no usable epoch. It once printed "best
# model in RUN/model.safetensors" and exited 0 without writing the file.
check_cmd_err 1 "no epoch gave a usable model (every validation accuracy was non-finite or its training had diverged); nothing was saved" -- \
    "$ELM" train shd --data shd --threads 1 --set num_memory=20 --lr 1 --out none --epochs 2 --batches-per-epoch 20
! grep -q "best model in" err && [ ! -e none/model.safetensors ] && ok \
    || bad "no usable epoch: $(tail -2 err); model.safetensors $([ -e none/model.safetensors ] && echo exists || echo absent)"

# --init keeps the model's own configuration: a model option that contradicts it is refused (it
# was once ignored without a word), one that agrees with it, or a knob, is not.
check_cmd_err 1 "m0: the model has num_memory = 2, the run sets 5: a model from --init keeps its own configuration" -- \
    "$ELM" train "${A[@]}" --out i1 --init m0 --set num_memory=5
[ ! -e i1 ] && ok || bad "a refused --init left a run folder"
check_cmd_err 1 "the model has memory_tau_max = 150, the run sets 20000" -- \
    "$ELM" train "${A[@]}" --out i1 --init m0 --set memory_tau_max=20000
check_cmd_err 0 "" -- "$ELM" train "${A[@]}" --out i2 --init m0 --lr 1e-4

# 6. A sweep grid with a misspelt key or an out-of-range value fails before anything starts.
echo '{"base": {"num_memory": 2}, "vary": {"num_memroy": [1, 2]}}' > typo.json
check_cmd_err 1 "unknown option 'num_memroy' (did you mean 'num_memory'?)" -- \
    "$ELM" sweep --task shd --data shd --grid typo.json --out sw --epochs 1
grep -q "2 of 2 points would fail; nothing was started" err && [ ! -e sw ] && ok \
    || bad "the sweep started: $(cat err)"
echo '{"base": {"num_memory": 2}, "points": [{"lr": 0.01}, {"lr": 5}]}' > range.json
check_cmd_err 1 "'lr' must be in \[0, 1\], got '5' (point lr=5)" -- "$ELM" sweep --task shd --data shd --grid range.json --out sw
echo '{"vary": {"memory_tau_max": [0.5, 10]}}' > tau.json
check_cmd_err 1 "memory_tau_max (0.5) is below memory_tau_min" -- "$ELM" sweep --task shd --data shd --grid tau.json --out sw
[ ! -e sw ] && ok || bad "a refused grid left a sweep folder"

# 11. train --help: each task's defaults; every run: its budget and a time estimate.
"$ELM" train --help > help.txt
grep -q "^  neuronio    35 epochs x 10000 batches of 8, adam lr 0.0005" help.txt \
    && grep -q "^  shd-adding  10 epochs x 2000 batches of 8, adamax lr 0.005, input dropout 0.5" help.txt \
    && grep -q "350,000 batches" help.txt && ok || bad "train --help lacks the task defaults"
check_cmd_err 0 "elm: budget: 6 batches (6000 sample-steps); about [0-9:]* of training" -- \
    "$ELM" train "${A[@]}" --out b11 --epochs 3 --batches-per-epoch 2

echo "train_guard_cli: $pass passed, $fail failed"
[ $fail -eq 0 ]
