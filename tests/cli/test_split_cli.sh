#!/usr/bin/env bash
# Validation and test apart (issue 16, item 1): `elm train --test DIR`, test_metrics.json with the
# best model's validation scores as valid_* and its test scores as test_* (none, with a note,
# when there is no test data: never a validation score under a test name), test data that is
# training or validation data refused (NeuronIO files, SHD files, Pathfinder folders), and the
# sweep's tables and main metric. Tiny generated data; each run takes well under a second.
set -u
. "$(dirname "$0")/../testlib.sh"
cli_test_in_tmp
for s in 1 2 3; do
    "$ELM" gen neuronio-teacher --sims 1 --seed $s --out nio$s >/dev/null 2>&1 || bad "gen nio$s"
done
A=(neuronio --data nio1 --epochs 1 --batches-per-epoch 2 --batch-size 2 --set num_memory=2 --threads 1)

# NeuronIO without --test: validation scores only, labelled so, and a note; no test_* at all.
check_cmd_err 0 "no test data (give --test DIR): no test metrics" -- "$ELM" train "${A[@]}" --out r1
grep -q "test metrics of the best model" err && bad "a run without test data printed test metrics" || ok
/usr/bin/python3 - r1 <<'PY' && ok || bad "r1/test_metrics.json: $(cat r1/test_metrics.json)"
import json, sys
d = sys.argv[1]
t = json.load(open(d + "/test_metrics.json")); m = json.load(open(d + "/metrics.json"))
assert not [k for k in t if k.startswith("test_")], t
assert "no test data" in t["note"], t
row = m[t["best_epoch"] - 1]
for k in ("AUC", "soma_RMSE", "num_simulations"):
    assert k not in t and t["valid_" + k] == row[k], (k, t, row)
PY

# With --test: test_* are the best model's scores on that data (what elm eval reports there),
# apart from the valid_* it was selected on; config.json records the test data.
check_cmd_err 0 "test metrics of the best model: AUC" -- "$ELM" train "${A[@]}" --test nio2 --out r2
grep -q "best model: epoch 1, validation soma_RMSE" err && ok || bad "no validation line: $(cat err)"
"$ELM" eval neuronio --model r2 --data nio2 --json --threads 1 >ev.json 2>/dev/null || bad "eval r2"
/usr/bin/python3 - r2 ev.json <<'PY' && ok || bad "r2/test_metrics.json: $(cat r2/test_metrics.json)"
import json, sys
d = sys.argv[1]
t = json.load(open(d + "/test_metrics.json")); e = json.load(open(sys.argv[2]))
c = json.load(open(d + "/config.json"))
assert c["test"] == "nio2", c
for k in ("AUC", "soma_RMSE", "soma_MAE", "num_simulations"):
    assert abs(t["test_" + k] - e[k]) <= 1e-12 * max(1, abs(e[k])), (k, t, e)
# nio1 and nio2 are different simulations: the two scores must differ.
assert t["test_soma_RMSE"] != t["valid_soma_RMSE"], t
assert "note" not in t, t
PY

# Test data that trained or validated the model is refused before anything is written.
check_cmd_err 1 "nio1/teacher_seed1.nioc is both test and training data" -- \
    "$ELM" train "${A[@]}" --test nio1 --out r3
check_cmd_err 1 "is both test and validation data" -- \
    "$ELM" train "${A[@]}" --valid nio3 --test nio3 --out r3
[ ! -e r3/config.json ] && ok || bad "a refused run wrote r3/config.json"

# SHD: --test FILE replaces DATA/shd_test.h5 (then not needed); a test file that is the
# validation or (given as --test) the training file is refused; one file linked as both
# shd_train.h5 and shd_test.h5 is allowed with a note in the test metrics.
mkdir shd1 && cp "$FIX/shd_tiny.h5" shd1/shd_train.h5 && cp "$FIX/shd_tiny.h5" other.h5
S=(shd --data shd1 --epochs 1 --batches-per-epoch 2 --batch-size 2 --set num_memory=2 --threads 1)
check_cmd_err 0 "test metrics of the best model: accuracy" -- "$ELM" train "${S[@]}" --test other.h5 --out s1
/usr/bin/python3 -c '
import json; t = json.load(open("s1/test_metrics.json"))
assert t["test_num_samples"] == 10 and "valid_accuracy" in t and "accuracy" not in t, t
assert "test_note" not in t, t' && ok || bad "s1/test_metrics.json: $(cat s1/test_metrics.json)"
check_cmd_err 1 "the test file other.h5 is the validation file" -- \
    "$ELM" train "${S[@]}" --test other.h5 --valid other.h5 --out s2
check_cmd_err 1 "the test file shd1/shd_train.h5 is the training file" -- \
    "$ELM" train "${S[@]}" --test shd1/shd_train.h5 --out s2
check_cmd_err 1 "shd1/shd_test.h5: not found" -- "$ELM" train "${S[@]}" --out s2
mkdir shdl && cp "$FIX/shd_tiny.h5" shdl/shd_train.h5 && ln -s shd_train.h5 shdl/shd_test.h5
check_cmd_err 0 "" -- "$ELM" train "${S[@]/shd1/shdl}" --out s3
grep -q '"test_note":.*not a held-out score' s3/test_metrics.json && ok \
    || bad "linked test file without a note: $(cat s3/test_metrics.json)"

# Pathfinder: --test DIR is all of DIR, and must not be the training folder.
"$ELM" gen pathfinder --n 40 --seed 5 --contour-length 6 --threads 1 --out pf >/dev/null 2>&1 &&
    "$ELM" gen pathfinder --n 20 --seed 6 --contour-length 6 --threads 1 --out pft >/dev/null 2>&1 ||
    bad "gen pathfinder"
P=(pathfinder --epochs 1 --batches-per-epoch 1 --batch-size 4 --set num_memory=2 --set mlp_hidden_size=4 --threads 1)
check_cmd_err 1 "is the training folder" -- "$ELM" train "${P[@]}" --data pf --test pf --out p1
check_cmd_err 0 "test metrics of the best model" -- "$ELM" train "${P[@]}" --data pf --test pft --out p2
grep -q '"test_num_samples":[[:space:]]*20' p2/test_metrics.json && ok \
    || bad "pathfinder --test: want all 20 images: $(cat p2/test_metrics.json)"

# Sweep: without --test a NeuronIO sweep's main metric is valid_AUC and no column is a test
# score; with --test the tables hold test_* beside valid_*.
echo '{"base": {"num_memory": 2}, "points": [{"seed": 1}, {"seed": 2}]}' > g.json
W=(--task neuronio --data nio1 --grid g.json --epochs 1 --batches-per-epoch 2 --batch-size 2 --jobs 1 --threads-per-job 1 --no-plot)
check_cmd_err 0 "main metric valid_AUC (no test data: give --test for test scores)" -- "$ELM" sweep "${W[@]}" --out w1
check_cmd_err 0 "main metric test_AUC" -- "$ELM" sweep "${W[@]}" --test nio2 --out w2
/usr/bin/python3 - <<'PY' && ok || bad "sweep tables: $(head -2 w1/results.csv) / $(head -2 w2/results.csv)"
import csv, json
r1 = list(csv.DictReader(open("w1/results.csv"))); r2 = list(csv.DictReader(open("w2/results.csv")))
assert "valid_AUC" in r1[0] and not [k for k in r1[0] if k.startswith("test_") or k == "AUC"], r1[0]
assert json.load(open("w1/results.json"))["metric"] == "valid_AUC"
assert json.load(open("w2/results.json"))["metric"] == "test_AUC"
for r in r2:
    t = json.load(open("w2/runs/%s/test_metrics.json" % r["point"]))
    # results.csv writes 10 significant digits.
    for k in ("test_AUC", "valid_AUC", "test_soma_RMSE"):
        assert abs(float(r[k]) - t[k]) <= 1e-9 * max(1, abs(t[k])), (k, r, t)
    assert r["test_soma_RMSE"] != r["valid_soma_RMSE"], r
PY

echo "test_split_cli: $pass passed, $fail failed"
[ $fail -eq 0 ]
