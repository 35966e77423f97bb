#!/usr/bin/env bash
# Hostile inputs of the second reliability review (issue 15, docs/RELIABILITY.md) seen from the
# command line: a FIFO given wherever a file is read must be refused at once, not hang the reader
# (D17); predict / grad errors must print the file's real dtype and every dimension (D15, D16).
set -u
ELM=${ELM_CLI:-build/elm}
SHARED=${ELM_SHARED:-../shared}
PY=/usr/bin/python3
[ -x "$ELM" ] || { echo "SKIP: $ELM not built"; exit 77; }
. "$(dirname "$0")/../testlib.sh"
$PY -c 'import numpy' 2>/dev/null || { echo "SKIP: /usr/bin/python3 has no numpy"; exit 77; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok() { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL: $*"; }
# expect_msg MESSAGE -- CMD: exit status 1 within 20 s and stderr exactly "elm: error: MESSAGE"
expect_msg() {
    local want=$1; shift; shift
    timeout 20 "$@" >"$T/out" 2>"$T/err"; local rc=$?
    if [ $rc -ne 1 ]; then bad "expected exit 1 from: $* (got $rc$([ $rc = 124 ] && echo ', hung'))"; cat "$T/err"; return; fi
    [ "$(cat "$T/err")" = "elm: error: $want" ] && ok || bad "message of '$*':
  got:  $(cat "$T/err")
  want: elm: error: $want"
}

# ---- D17: FIFOs. The old readers blocked in open() until a writer appeared. ----
mkfifo "$T/fifo" "$T/fifo_sim__.p" "$T/fifo.npy" "$T/fifo.json" "$T/fifo.h5"
expect_msg "$T/fifo: not a regular file" -- "$ELM" info "$T/fifo"
expect_msg "$T/fifo.json: not a regular file" -- "$ELM" train neuronio --config "$T/fifo.json" --out "$T/run"
expect_msg "$T/fifo_sim__.p: not a regular file" -- "$ELM" data convert neuronio "$T/fifo_sim__.p" --out "$T/cache"
# A folder holding a FIFO named like a model file.
mkdir -p "$T/mdir"; mkfifo "$T/mdir/model.safetensors"
timeout 20 "$ELM" info "$T/mdir" >/dev/null 2>"$T/err"; rc=$?
[ $rc = 1 ] && grep -q "not a regular file" "$T/err" && ok || bad "model folder with a FIFO: rc $rc: $(cat "$T/err")"

# ---- D1: a repeated "model" or "train" section (JSON allows it) overflowed a 3-entry array ----
for n in 2 3 5 64; do
    { printf '{'; for i in $(seq $n); do printf '"model": {"num_memory": %d}, "train": {"lr": 0.01}, ' $i; done
      printf '"seed": 1}'; } >"$T/rep$n.json"
    expect_msg "$T/rep$n.json: the section 'model' appears twice" -- \
        "$ELM" train neuronio --config "$T/rep$n.json" --out "$T/run_rep$n"
    [ ! -e "$T/run_rep$n" ] && ok || bad "repeated sections: a run folder was made"
done
printf '{"train": {"lr": 0.01}, "train": {"seed": 2}}' >"$T/rep_train.json"
expect_msg "$T/rep_train.json: the section 'train' appears twice" -- \
    "$ELM" train shd --config "$T/rep_train.json" --out "$T/run_rep_train"

# ---- D19: integer knobs were parsed as long and truncated to int (4294967304 trained with 8) ----
expect_msg "--batch-size: 'batch_size' must be in [1, 1.07374e+09], got '4294967304'" -- \
    "$ELM" train neuronio --batch-size 4294967304 --data "$T" --out "$T/run_d19"
printf '{"train": {"batch_size": 4294967304}}' >"$T/d19.json"
expect_msg "$T/d19.json: 'batch_size' must be in [1, 1.07374e+09], got '4294967304'" -- \
    "$ELM" train neuronio --config "$T/d19.json" --data "$T" --out "$T/run_d19"
[ ! -e "$T/run_d19" ] && ok || bad "D19: a refused batch size left a run folder"
# ---- D23: a --config value error names the file and the whole value (it was cut at 15) ----
printf '{"lr": "0.5000000000000000000001x"}' >"$T/d23.json"
expect_msg "$T/d23.json: 'lr' expects a number, got '0.5000000000000000000001x'" -- \
    "$ELM" train neuronio --config "$T/d23.json" --data "$T" --out "$T/run_d23"

M15=$SHARED/models/neuronio/num_memory_15
if [ -f "$M15/model.safetensors" ]; then
    expect_msg "$T/fifo.npy: not a regular file" -- "$ELM" predict --model "$M15" --input "$T/fifo.npy" --output "$T/y.npy"
    # ---- D15 / D16: the messages print the real dtype and the whole shape ----
    $PY - "$T" <<'PYEOF'
import numpy as np, sys
d = sys.argv[1]
np.save(d + "/i32.npy", np.zeros((2, 5, 1278), np.int32))
np.save(d + "/wide.npy", np.zeros((2, 300, 100), np.float32))
np.save(d + "/x.npy", np.zeros((2, 5, 1278), np.float32))
np.save(d + "/g_i64.npy", np.zeros((2, 5, 2), np.int64))
np.save(d + "/g_3d.npy", np.zeros((30, 60, 1), np.float32))
PYEOF
    expect_msg "$T/i32.npy: input must be float32 or float64, not int32" -- \
        "$ELM" predict --model "$M15" --input "$T/i32.npy" --output "$T/y.npy"
    expect_msg "$T/wide.npy: input must be [B, T, 1278] or [T, 1278] for this model, not [2, 300, 100]" -- \
        "$ELM" predict --model "$M15" --input "$T/wide.npy" --output "$T/y.npy"
    expect_msg "$T/wide.npy: input must be [B, T, 1278] or [T, 1278] for this model, not [2, 300, 100]" -- \
        "$ELM" grad --model "$M15" --input "$T/wide.npy" --dloss "$T/g_3d.npy" --output "$T/g.safetensors"
    expect_msg "$T/g_i64.npy: dloss must be float32 or float64 of Y's shape [2, 5, 2], not int64 [2, 5, 2]" -- \
        "$ELM" grad --model "$M15" --input "$T/x.npy" --dloss "$T/g_i64.npy" --output "$T/g.safetensors"
    expect_msg "$T/g_3d.npy: dloss must be float32 or float64 of Y's shape [2, 5, 2], not float32 [30, 60, 1]" -- \
        "$ELM" grad --model "$M15" --input "$T/x.npy" --dloss "$T/g_3d.npy" --output "$T/g.safetensors"
    expect_msg "$T/fifo.npy: not a regular file" -- \
        "$ELM" grad --model "$M15" --input "$T/x.npy" --dloss "$T/fifo.npy" --output "$T/g.safetensors"
else
    shared_missing_part "$M15 absent: predict/grad message checks not run"
fi

finish
