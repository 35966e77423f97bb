#!/bin/bash
# shd_bins_cli.sh - the bin_ms knob of shd / shd-adding end to end on the tiny SHD fixture:
# `--set bin_ms=20` trains on 50-step digits with delta_t 20 (both in config.json), `elm eval`
# of the run bins at 20 ms again (its test metrics equal the trainer's test_metrics.json) while
# 10 ms bins give other numbers and a warning; a model without its config.json needs --set
# bin_ms; bad values are refused with messages; sweep points set bin_ms (delta_t follows), and
# the shipped SHD-Adding grids pass `elm sweep --dry-run`. Tiny models, one or two batches each.
# Skips (77) when the elm CLI is not built.
set -u
ELM=${ELM_CLI:-build/elm}
[ -x "$ELM" ] || { echo "SKIP: $ELM is not built"; exit 77; }
. "$(dirname "$0")/../testlib.sh"
SRC=${ELM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
PY=/usr/bin/python3

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/shd"
ln -s "$SRC/tests/fixtures/shd_tiny.h5" "$tmp/shd/shd_train.h5"
ln -s "$SRC/tests/fixtures/shd_tiny.h5" "$tmp/shd/shd_test.h5"
tiny=(--epochs 1 --set batches_per_epoch=2 --set num_memory=4 --set mlp_hidden_size=6
      --set eval_samples=40 --threads 1)

"$ELM" train --help | grep -q "bin_ms" || bad "train --help does not list bin_ms"
"$ELM" eval --help | grep -q "bin_ms" || bad "eval --help does not say how it bins"

"$ELM" train shd-adding --data "$tmp/shd" --out "$tmp/r20" "${tiny[@]}" --set bin_ms=20 \
    >"$tmp/r20.log" 2>&1 || { bad "training at 20 ms failed: $(tail -3 "$tmp/r20.log")"; finish; }
$PY - "$tmp/r20/config.json" <<'PY' || bad "config.json: bin_ms / delta_t not 20"
import json, sys
c = json.load(open(sys.argv[1]))
assert c["train"]["bin_ms"] == 20 and c["model"]["delta_t"] == 20, (c["train"], c["model"])
PY
grep -q '"delta_t":[[:space:]]*20' "$tmp/r20/model_config.json" || bad "model_config delta_t"

# Evaluation of the run bins as it trained: the trainer's own test metrics, to the last digit.
"$ELM" eval shd-adding --model "$tmp/r20" --data "$tmp/shd" --set eval_samples=40 --json \
    >"$tmp/e20.json" 2>"$tmp/e20.err" || bad "eval of the 20 ms run failed: $(cat "$tmp/e20.err")"
grep -q "bins of 20 ms" "$tmp/e20.err" || bad "eval does not say it took 20 ms: $(cat "$tmp/e20.err")"
grep -q "warning" "$tmp/e20.err" && bad "eval warned on matching bins: $(cat "$tmp/e20.err")"
# The same through the model file's path (its folder's config.json).
"$ELM" eval shd-adding --model "$tmp/r20/model.safetensors" --data "$tmp/shd" \
    --set eval_samples=40 --json >"$tmp/e20f.json" 2>/dev/null || bad "eval by file failed"
# 10 ms bins on purpose: other sequences (100 steps a digit), so other numbers, and a warning.
"$ELM" eval shd-adding --model "$tmp/r20" --data "$tmp/shd" --set eval_samples=40 \
    --set bin_ms=10 --json >"$tmp/e10.json" 2>"$tmp/e10.err" || bad "eval at 10 ms failed"
grep -q "warning: .*delta_t 20 ms but the data are binned at 10 ms" "$tmp/e10.err" ||
    bad "no delta_t warning: $(cat "$tmp/e10.err")"
# Alone, without config.json: 10 ms (and the warning) unless --set bin_ms=20.
mkdir "$tmp/alone" && cp "$tmp/r20/model.safetensors" "$tmp/r20/model_config.json" "$tmp/alone/"
"$ELM" eval shd-adding --model "$tmp/alone" --data "$tmp/shd" --set eval_samples=40 --json \
    >"$tmp/ea10.json" 2>"$tmp/ea10.err" || bad "eval alone failed"
grep -q "warning" "$tmp/ea10.err" || bad "no warning for a lone 20 ms model at 10 ms"
"$ELM" eval shd-adding --model "$tmp/alone" --data "$tmp/shd" --set eval_samples=40 \
    --set bin_ms=20 --json >"$tmp/ea20.json" 2>/dev/null || bad "eval alone at 20 ms failed"
$PY - "$tmp" <<'PY' || bad "evaluation metrics do not match the bins"
import json, sys
d = sys.argv[1]
rd = lambda f: json.load(open(f"{d}/{f}"))
# test_metrics.json names the best model's test scores test_* (issue 16).
tm = {k[5:]: v for k, v in rd("r20/test_metrics.json").items() if k.startswith("test_")}
for f in ("e20.json", "e20f.json", "ea20.json"):
    e = rd(f)
    assert e["num_samples"] == tm["num_samples"] == 40, (f, e["num_samples"])
    # The same model, data, bins and evaluation code: bitwise the same double sums.
    assert e["loss"] == tm["loss"] and e["accuracy"] == tm["accuracy"], (f, e["loss"], tm["loss"])
    assert e["confusion"] == tm["confusion"], f
for f in ("e10.json", "ea10.json"):
    assert rd(f)["loss"] != tm["loss"], (f, "10 ms bins gave the 20 ms numbers")
assert rd("e10.json") == rd("ea10.json")
PY

# delta_t set apart stays apart; the default run is 10 ms with delta_t 10.
"$ELM" train shd --data "$tmp/shd" --out "$tmp/r5" "${tiny[@]}" --set delta_t=7 --set bin_ms=5 \
    >"$tmp/r5.log" 2>&1 || bad "training at 5 ms failed: $(tail -3 "$tmp/r5.log")"
"$ELM" train shd --data "$tmp/shd" --out "$tmp/r10" "${tiny[@]}" >/dev/null 2>&1 ||
    bad "default training failed"
$PY - "$tmp" <<'PY' || bad "config.json of the 5 ms / default runs"
import json, sys
d = sys.argv[1]
c5, c10 = (json.load(open(f"{d}/{r}/config.json")) for r in ("r5", "r10"))
assert c5["train"]["bin_ms"] == 5 and c5["model"]["delta_t"] == 7, (c5["train"], c5["model"])
assert c10["train"]["bin_ms"] == 10 and c10["model"]["delta_t"] == 10
PY

# Refusals: exit 2 for a malformed value, 1 for one the task refuses; each names the problem.
for v in -1 0.5 1001 ten; do
    msg=$("$ELM" train shd --data "$tmp/shd" --out "$tmp/bad" "${tiny[@]}" --set bin_ms=$v 2>&1)
    rc=$?
    [ $rc -ne 0 ] && echo "$msg" | grep -q "bin_ms" || bad "bin_ms=$v: rc $rc: $msg"
done
[ -e "$tmp/bad/config.json" ] && bad "a refused bin_ms left a run"
msg=$("$ELM" eval shd --model "$tmp/r10" --data "$tmp/shd" --set bin_ms=0.5 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$msg" | grep -q "bin_ms" || bad "eval bin_ms=0.5: rc $rc: $msg"
echo '{"train": {"bin_ms": "wide"}}' >"$tmp/alone/config.json"
msg=$("$ELM" eval shd --model "$tmp/alone" --data "$tmp/shd" 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$msg" | grep -q "config.json.*bin_ms" || bad "broken config.json: $rc $msg"

# Sweeps: bin_ms as a varied key; each point's delta_t follows. The shipped grids validate.
echo '{"base": {"num_memory": 4, "mlp_hidden_size": 6}, "vary": {"bin_ms": [20, 50]}}' \
    >"$tmp/grid.json"
"$ELM" sweep --task shd-adding --data "$tmp/shd" --grid "$tmp/grid.json" --out "$tmp/sw" \
    --no-plot --threads-per-job 1 --epochs 1 --set batches_per_epoch=1 --set eval_samples=20 \
    >"$tmp/sw.log" 2>&1 || bad "sweep failed: $(tail -3 "$tmp/sw.log")"
for b in 20 50; do
    $PY - "$tmp/sw/runs/bin_ms=$b/config.json" "$b" <<'PY' || bad "sweep point bin_ms=$b"
import json, sys
c, b = json.load(open(sys.argv[1])), float(sys.argv[2])
assert c["train"]["bin_ms"] == b and c["model"]["delta_t"] == b, (c["train"], c["model"])
PY
done
for g in shd_adding_bins shd_adding_tau; do
    out=$("$ELM" sweep --task shd-adding --data "$tmp/shd" --grid "$SRC/grids/$g.json" \
        --out "$tmp/dry_$g" --dry-run 2>&1) || bad "grid $g does not validate: $out"
done
echo "$out" | grep -q "4 points" || bad "tau grid: $out"
out=$("$ELM" sweep --task shd-adding --data "$tmp/shd" --grid "$SRC/grids/shd_adding_bins.json" \
    --out "$tmp/dry" --dry-run 2>&1)
echo "$out" | grep -q "24 points (vary over model_type, seed, bin_ms)" || bad "bins grid: $out"
[ -e "$tmp/dry" ] && bad "--dry-run created its folder"

finish
