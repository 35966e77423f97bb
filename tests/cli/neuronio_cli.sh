#!/usr/bin/env bash
# The NeuronIO command-line contract: elm data convert neuronio, elm data info on the cache and on
# pickles, elm eval neuronio --json (the 8 reference metric names, values as expected_metrics.json
# to 1e-4), the cache evaluating like the pickle, and clear errors on bad input.
set -u
ELM=${ELM_CLI:-build/elm}
SHARED=${ELM_SHARED:-../shared}
PY=/usr/bin/python3
[ -x "$ELM" ] || { echo "SKIP: $ELM not built"; exit 77; }
. "$(dirname "$0")/../testlib.sh"
D=$SHARED/data/neuronio
[ -f "$D/expected_metrics.json" ] || shared_missing "shared reference folder absent ($SHARED)"
DEV=$(ls "$D"/L5PC_sim__*randseed_700001.p | head -1)
M15=$SHARED/models/neuronio/num_memory_15
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok() { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL: $*"; }

# convert: the dev pickle (and the py2 folder) into a cache folder
mkdir -p "$T/dev"; ln -s "$DEV" "$T/dev/"
"$ELM" data convert neuronio "$T/dev" --out "$T/cache" 2>"$T/err" && ok || { bad "convert"; cat "$T/err"; }
ls "$T"/cache/*.nioc >/dev/null 2>&1 && ok || bad "no .nioc written"
[ -f "$T/cache/index.json" ] && ok || bad "no index.json"
"$ELM" data convert neuronio "$D/py2" --out "$T/py2cache" 2>"$T/err" && ok || { bad "convert py2"; cat "$T/err"; }
[ "$(ls "$T"/py2cache/*.nioc | wc -l)" = 2 ] && ok || bad "py2 folder: expected 2 caches"

# info on the cache and on the pickle folder
"$ELM" data info "$T/cache" --json >"$T/info.json" 2>"$T/err" && ok || { bad "info cache"; cat "$T/err"; }
"$ELM" data info "$T/dev" --json >"$T/info_p.json" 2>"$T/err" && ok || { bad "info pickles"; cat "$T/err"; }
"$ELM" data info "$T/cache" >/dev/null 2>&1 && ok || bad "info text"
$PY - "$T/info.json" "$T/info_p.json" <<'PYEOF' && ok || bad "info --json content"
import json, sys
c = json.load(open(sys.argv[1])); p = json.load(open(sys.argv[2]))
assert c["format"] == "neuronio-cache" and p["format"] == "neuronio-pickle", (c["format"], p["format"])
for d in (c, p):
    assert d["num_simulations"] == 8 and d["num_inputs"] == 1278 and d["steps_min"] == 6000, d
    assert d["simulations_kept_by_eval_filter"] == 7, d
assert c["input_spikes"] == p["input_spikes"] == 669453, (c["input_spikes"], p["input_spikes"])
assert c["caches_verified"] == 1
PYEOF

# eval on the cache and on the pickle folder: the reference's 8 keys, the expected numbers
"$ELM" eval neuronio --model "$M15" --data "$T/cache" --json >"$T/e_cache.json" 2>"$T/err" && ok || { bad "eval cache"; cat "$T/err"; }
"$ELM" eval neuronio --model "$M15" --data "$T/dev" --json >"$T/e_pick.json" 2>"$T/err" && ok || { bad "eval pickles"; cat "$T/err"; }
$PY - "$T/e_cache.json" "$T/e_pick.json" "$D/expected_metrics.json" <<'PYEOF' && ok || bad "eval --json content"
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
e = json.load(open(sys.argv[3]))["dev file (8 simulations)"]["num_memory_15"]
keys = ["AUC", "AUC @ 0.0025 FP", "AUC @ 0.0100 FP", "TP @ 0.0025 FP", "TP @ 0.0100 FP",
        "soma_RMSE", "soma_MAE", "soma_explained_variance_percent"]
for k in keys:
    assert k in a and k in b, k
    assert a[k] == b[k], (k, a[k], b[k])          # cache and pickle: identical
    assert abs(a[k] - e[k]) <= 1e-4, (k, a[k], e[k])
assert a["num_simulations"] == 8, a
PYEOF

# errors: a missing path, a corrupt cache, a non-NeuronIO pickle, a forbidden global
"$ELM" eval neuronio --model "$M15" --data "$T/nothing" >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 1 ] && grep -q "nothing" "$T/err" && ok || bad "missing data: rc $rc $(cat "$T/err")"
mkdir -p "$T/badc"; head -c 100000 "$T"/cache/*.nioc > "$T/badc/x.nioc"
"$ELM" data info "$T/badc" >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 1 ] && grep -q "x.nioc" "$T/err" && ok || bad "truncated cache: rc $rc $(cat "$T/err")"
mkdir -p "$T/evil"; printf "cos\nsystem\n(S'touch %s/pwned'\ntR." "$T" > "$T/evil/a_sim__b.p"
"$ELM" data convert neuronio "$T/evil" --out "$T/evilout" >/dev/null 2>"$T/err"; rc=$?
[ $rc -eq 1 ] && grep -q "os.system" "$T/err" && [ ! -e "$T/pwned" ] && ok || bad "forbidden global: rc $rc $(cat "$T/err")"
"$ELM" data convert neuronio >/dev/null 2>&1; [ $? -eq 2 ] && ok || bad "usage error exit status"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
