#!/bin/bash
# eval_split_cli.sh - `elm eval pathfinder --split all|train|valid|test` on a tiny generated
# folder (40 images: 32/4/4 by the fixed 80/10/10 split): each split scores its count of images,
# test is the default, all scores every image, and all is exactly train + valid + test (its
# correct answers and summed loss are the parts' sums). Bad --split values are usage errors.
# The model is trained for one batch only: the counts and sums do not depend on its quality.
# Skips (77) when the elm CLI is not built.
set -u
. "$(dirname "$0")/../testlib.sh"
cli_test_in_tmp

"$ELM" gen pathfinder --n 40 --seed 3 --out "$T/pf" --threads 1 >/dev/null || bad "generation failed"
set_a="$T/pf/pathfinder32/curv_contour_length_14"
"$ELM" train pathfinder --data "$set_a" --out "$T/run" --epochs 1 --batch-size 4 \
    --set batches_per_epoch=1 --set num_memory=4 --set mlp_hidden_size=6 --threads 1 \
    >"$T/train.log" 2>&1 || { bad "training failed: $(tail -5 "$T/train.log")"; finish; }

"$ELM" eval --help | grep -q -- "--split" || bad "eval --help does not name --split"
"$ELM" eval --help | grep -q "all (every image" || bad "eval --help does not describe --split all"

for sp in all train valid test default; do
    if [ $sp = default ]; then args=(); else args=(--split $sp); fi
    "$ELM" eval pathfinder --model "$T/run" --data "$set_a" "${args[@]}" --json \
        >"$T/$sp.json" 2>"$T/$sp.err" || bad "eval --split $sp failed: $(cat "$T/$sp.err")"
done
/usr/bin/python3 - "$T" <<'PY' || bad "split counts or sums are wrong"
import json, sys
d = sys.argv[1]
m = {s: json.load(open(f"{d}/{s}.json")) for s in ("all", "train", "valid", "test", "default")}
want = {"all": 40, "train": 32, "valid": 4, "test": 4, "default": 4}
for s, n in want.items():
    assert m[s]["num_samples"] == n, (s, m[s]["num_samples"], n)
assert m["default"] == m["test"], (m["default"], m["test"])
parts = ("train", "valid", "test")
# Correct answers (accuracy * n, integers) and confusion counts add up exactly.
correct = lambda j: round(j["accuracy"] * j["num_samples"])
assert correct(m["all"]) == sum(correct(m[s]) for s in parts), [correct(m[s]) for s in m]
for r in range(2):
    for c in range(2):
        assert m["all"]["confusion"][r][c] == sum(m[s]["confusion"][r][c] for s in parts)
# Summed losses: each is a double sum of float32 logits' cross-entropies, printed by cJSON with
# 15+ significant digits; 1e-9 relative leaves room only for summation order.
tot = sum(m[s]["loss"] * m[s]["num_samples"] for s in parts)
assert abs(m["all"]["loss"] * 40 - tot) <= 1e-9 * max(1.0, abs(tot)), (m["all"]["loss"] * 40, tot)
# The parts are disjoint subsets: all differs from each part (a split ignored would not).
assert sum(m["all"]["confusion"][0]) + sum(m["all"]["confusion"][1]) == 40
print("counts", {s: m[s]["num_samples"] for s in m})
PY

# Text output names the count too.
ev=$("$ELM" eval pathfinder --model "$T/run" --data "$set_a" --split all 2>&1) ||
    bad "eval --split all (text) failed: $ev"
echo "$ev" | grep -Eq "num_samples +40" || bad "eval --split all text: $ev"

# Usage errors: an unknown split, and a split the task's data does not have.
msg=$("$ELM" eval pathfinder --model "$T/run" --data "$set_a" --split bogus 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$msg" | grep -q "all, train, valid or test" || bad "--split bogus: $rc $msg"
msg=$("$ELM" eval shd --model "$T/run" --data "$set_a" --split all 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$msg" | grep -q "valid or test" || bad "shd --split all: $rc $msg"
msg=$("$ELM" eval neuronio --model "$T/run" --data "$set_a" --split train 2>&1); rc=$?
[ $rc -eq 2 ] || bad "neuronio --split train: $rc $msg"

# A folder too small for a validation split (6 images: 4/0/2) is still scored whole.
"$ELM" gen pathfinder --n 6 --seed 4 --out "$T/small" --threads 1 >/dev/null || bad "gen 6"
small="$T/small/pathfinder32/curv_contour_length_14"
ev=$("$ELM" eval pathfinder --model "$T/run" --data "$small" --split all 2>&1) ||
    bad "eval --split all of 6 images failed: $ev"
echo "$ev" | grep -Eq "num_samples +6" || bad "6 images --split all: $ev"
msg=$("$ELM" eval pathfinder --model "$T/run" --data "$small" --split valid 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$msg" | grep -q "valid split of .* is empty" || bad "empty valid: $rc $msg"

finish
