#!/usr/bin/env bash
# The command-line contract of issue 2: elm info / predict / grad, and their errors on bad input.
# Needs the released models in ../shared (a failure under ELM_REQUIRE_SHARED=1); the numbers of
# predict / grad are checked with numpy, the rest runs without it (reported as a skipped part).
# elm's output goes to files before it is searched, so its exit status is never lost in a pipe.
set -u
ELM=${ELM_CLI:-build/elm}
SHARED=${ELM_SHARED:-../shared}
PY=${ELM_TEST_PYTHON:-/usr/bin/python3}
. "$(dirname "$0")/../testlib.sh"
[ -x "$ELM" ] || { echo "SKIP: $ELM not built"; exit 77; }
[ -f "$SHARED/models/neuronio/num_memory_15/model.safetensors" ] ||
    shared_missing "shared reference folder absent ($SHARED)"
have_numpy=0
$PY -c 'import numpy' 2>/dev/null && have_numpy=1
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
expect_fail() { # expect_fail WORD... -- CMD: exit status 1 and a message containing WORD
    local words=() ; while [ "$1" != "--" ]; do words+=("$1"); shift; done; shift
    "$@" >"$T/out" 2>"$T/err"; local rc=$?
    if [ $rc -ne 1 ]; then bad "expected exit 1 from: $* (got $rc)"; cat "$T/err"; return; fi
    for w in "${words[@]}"; do grep -q -- "$w" "$T/err" || { bad "message lacks '$w': $(cat "$T/err")"; return; }; done
    ok
}
M15=$SHARED/models/neuronio/num_memory_15

# info
$ELM info "$M15" --json > "$T/info.json" && ok || bad "info --json"
$PY - "$T/info.json" <<'PYEOF' && ok || bad "info --json keys"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["num_params"] == 6827, d["num_params"]
assert d["version"] == "v1"
assert d["config"]["num_memory"] == 15 and d["config"]["lambda_value"] == 5.0
assert d["config"]["mlp_hidden_size"] == 30
PYEOF
if $ELM info "$M15/model.safetensors" >"$T/info.txt"; then
    grep -q "6827 trainable" "$T/info.txt" && ok || bad "info text: $(cat "$T/info.txt")"
else
    bad "info text: elm exited $?"
fi

if [ $have_numpy = 1 ]; then
# predict: float32 [B,T,I], float64 [T,I], --f64
$PY - "$SHARED" "$T" <<'PYEOF'
import numpy as np, sys
X = np.load(sys.argv[1] + "/parity/pretrained/X.npy")
np.save(sys.argv[2] + "/x32.npy", X)
np.save(sys.argv[2] + "/x64_one.npy", X[1].astype(np.float64))
G = np.random.default_rng(0).standard_normal((2, 300, 2)).astype(np.float32)
np.save(sys.argv[2] + "/g.npy", G)
Xn = X.copy(); Xn[0, 5, 7] = np.nan; np.save(sys.argv[2] + "/xnan.npy", Xn)
np.save(sys.argv[2] + "/xwrong.npy", X[:, :, :100])
np.save(sys.argv[2] + "/xint.npy", X.astype(np.int32))
PYEOF
$ELM predict --model "$M15" --input "$T/x32.npy" --output "$T/y32.npy" && ok || bad "predict f32"
$ELM predict --model "$M15" --input "$T/x32.npy" --output "$T/y64.npy" --f64 && ok || bad "predict f64"
$ELM predict --model "$M15" --input "$T/x64_one.npy" --output "$T/y1.npy" && ok || bad "predict [T,I]"
$PY - "$SHARED" "$T" <<'PYEOF' && ok || bad "predict numbers"
import numpy as np, sys
ref = np.load(sys.argv[1] + "/parity/pretrained/num_memory_15_y_f64.npy")
y32 = np.load(sys.argv[2] + "/y32.npy"); y64 = np.load(sys.argv[2] + "/y64.npy")
y1 = np.load(sys.argv[2] + "/y1.npy")
assert y32.dtype == np.float32 and y32.shape == (2, 300, 2)
assert y64.dtype == np.float64 and y64.shape == (2, 300, 2)
assert y1.shape == (1, 300, 2)
m = np.abs(ref).max()
assert np.abs(y64 - ref).max() <= 1e-10 * m, np.abs(y64 - ref).max()
assert np.abs(y32 - ref).max() <= 1e-4 * m
assert np.abs(y1[0] - ref[1]).max() <= 1e-4 * m
PYEOF

# grad: names, dtypes, L = sum(Y * G)
$ELM grad --model "$M15" --input "$T/x32.npy" --dloss "$T/g.npy" --output "$T/g32.safetensors" && ok || bad "grad"
$ELM grad --model "$M15" --input "$T/x32.npy" --dloss "$T/g.npy" --output "$T/g64.safetensors" --f64 && ok || bad "grad f64"
$PY - "$T" "$SHARED" <<'PYEOF' && ok || bad "grad contents"
import sys; sys.path.insert(0, sys.argv[2] + "/tools")
from st_io import load_file
import numpy as np
g32, _ = load_file(sys.argv[1] + "/g32.safetensors")
g64, meta = load_file(sys.argv[1] + "/g64.safetensors")
want = {"_proto_w_s", "mlp.network.0.weight", "mlp.network.0.bias", "mlp.network.2.weight",
        "mlp.network.2.bias", "w_y.weight", "w_y.bias"}
assert set(g32) == want and set(g64) == want, set(g32)
assert g32["_proto_w_s"].dtype == np.float32 and g64["_proto_w_s"].dtype == np.float64
assert g64["mlp.network.0.weight"].shape == (30, 60)
for k in want:
    d = np.abs(g32[k] - g64[k]).max() / max(np.abs(g64[k]).max(), 1e-30)
    assert d < 1e-3, (k, d)
PYEOF

fi

# bad input: named file and problem, exit 1, no crash
if [ $have_numpy = 1 ]; then
    expect_fail "xnan.npy" "non-finite" -- $ELM predict --model "$M15" --input "$T/xnan.npy" --output "$T/o.npy"
    expect_fail "xwrong.npy" "1278" -- $ELM predict --model "$M15" --input "$T/xwrong.npy" --output "$T/o.npy"
    expect_fail "xint.npy" "float32" -- $ELM predict --model "$M15" --input "$T/xint.npy" --output "$T/o.npy"
else
    skip_part "$PY has no numpy: predict / grad numbers and bad-array inputs not checked"
fi
head -c 5000 "$M15/model.safetensors" > "$T/trunc.safetensors"
expect_fail "trunc.safetensors" -- $ELM info "$T/trunc.safetensors"
printf 'not a model at all' > "$T/junk.safetensors"
expect_fail "junk.safetensors" -- $ELM info "$T/junk.safetensors"
mkdir -p "$T/typo"; cp "$M15/model.safetensors" "$T/typo/"
printf '{"num_memmory": 15}\n' > "$T/typo/model_config.json"
expect_fail "model_config.json" "num_memmory" -- $ELM info "$T/typo"
expect_fail "no.npy" -- $ELM predict --model "$M15" --input "$T/no.npy" --output "$T/o.npy"
# (the input need not exist: the missing --output is a usage error found first)
$ELM predict --model "$M15" --input "$T/x32.npy" >/dev/null 2>&1; [ $? -eq 2 ] && ok || bad "usage error exit 2"

finish
