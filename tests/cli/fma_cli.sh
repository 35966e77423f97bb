#!/bin/bash
# fma_cli.sh - the fused multiply-add path from outside: `elm train --set fma=1` records the knob
# in config.json and trains to a model that is not bitwise the exact path's (on a CPU with FMA)
# but is within rounding of it, and whose test score `elm eval` reproduces exactly (the trainer
# scores with the exact path); a --resume that would switch it is refused; fma with float64 or an LSTM, and values other than 0 and 1, are refused;
# `elm bench --fma` runs and refuses --f64 with it. Tiny runs: only the plumbing is checked;
# tests/core/test_fma.c checks the kernels' accuracy. Skips (77) when the CLI is not built.
set -u
. "$(dirname "$0")/../testlib.sh"
cli_test_in_tmp

"$ELM" gen pathfinder --n 40 --seed 3 --out "$T/pf" --threads 1 >/dev/null || bad "generation failed"
D="$T/pf/pathfinder32/curv_contour_length_14"
A=(pathfinder --data "$D" --epochs 2 --batch-size 4 --set batches_per_epoch=2
   --set num_memory=4 --set mlp_hidden_size=20 --set pixel_levels=4 --threads 1)
"$ELM" train "${A[@]}" --out "$T/exact" >"$T/exact.log" 2>&1 ||
    { bad "exact training failed: $(tail -5 "$T/exact.log")"; finish; }
"$ELM" train "${A[@]}" --out "$T/fused" --set fma=1 >"$T/fused.log" 2>&1 ||
    { bad "fused training failed: $(tail -5 "$T/fused.log")"; finish; }

/usr/bin/python3 - "$T" <<'PY' || bad "fma not recorded, or the fused model is not the exact one to rounding"
import json, struct, sys
t = sys.argv[1]
assert json.load(open(f"{t}/fused/config.json"))["train"]["fma"] == 1
assert json.load(open(f"{t}/exact/config.json"))["train"]["fma"] == 0
def floats(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    head = json.loads(b[8:8 + n])
    out = {}
    for k, v in head.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        raw = b[8 + n + s:8 + n + e]
        out[k] = struct.unpack(f"<{len(raw) // 4}f", raw) if v["dtype"] == "F32" else None
    return out
a = floats(f"{t}/exact/model.safetensors")
f = floats(f"{t}/fused/model.safetensors")
assert a.keys() == f.keys()
worst = 0.0
for k in a:
    if not a[k]:
        continue
    scale = max(1e-3, max(abs(v) for v in a[k]))
    worst = max(worst, max(abs(x - y) for x, y in zip(a[k], f[k])) / scale)
# 4 Adam steps at lr 1e-3 move a weight by up to ~4e-3; rounding differences move it by ~1e-6.
assert worst < 1e-4, worst
PY

# The trainer scores with the exact path even when it trains fused: `elm eval` (exact, on any
# CPU) reproduces the run's test score to the last digit.
"$ELM" eval pathfinder --model "$T/fused" --data "$D" --json >"$T/ev.json" 2>/dev/null ||
    bad "eval of the fused run failed"
/usr/bin/python3 - "$T" <<'PY' || bad "elm eval does not reproduce the fused run's test score"
import json, sys
t = sys.argv[1]
run = json.load(open(f"{t}/fused/test_metrics.json"))
ev = json.load(open(f"{t}/ev.json"))
assert run["test_accuracy"] == ev["accuracy"] and run["test_loss"] == ev["loss"], (run, ev)
PY

if "$ELM" --version | grep -q "fused on this CPU"; then
    cmp -s "$T/exact/model.safetensors" "$T/fused/model.safetensors" &&
        bad "fma=1 trained the exact path's bits: the knob did not reach the fused kernels"
else
    skip_part "this CPU or build does not fuse (elm --version): the fused path computes the exact bits"
fi

check_cmd_err 1 "would change the run" -- "$ELM" train "${A[@]}" --out "$T/fused" --resume \
    --set fma=0
check_cmd_err 1 "fma=1: fused multiply-adds are a path of float32 ELM models, not of a float64" -- \
    "$ELM" train "${A[@]}" --out "$T/r1" --set fma=1 --set dtype=float64
check_cmd_err 1 "fma=1: fused multiply-adds are a path of float32 ELM models, not of a float32 lstm" -- \
    "$ELM" train "${A[@]}" --out "$T/r2" --set fma=1 --set model_type=lstm
check_cmd_err 1 "fma" -- "$ELM" train "${A[@]}" --out "$T/r3" --set fma=2
check_cmd_err 1 "fma" -- "$ELM" train "${A[@]}" --out "$T/r4" --set fma=yes

check_cmd 0 "" "" -- "$ELM" bench --config pathfinder --mode train --batch 8 --steps 64 --reps 1 \
    --min-time 0 --fma --json --no-data
check_cmd_err 2 "--fma is a float32 path" -- "$ELM" bench --fma --f64
finish
