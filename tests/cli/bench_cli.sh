#!/usr/bin/env bash
# The command-line contract of `elm bench` (issue 6): its flags, the JSON fields, a model config
# file as --config, thread counts, the data paths, and clear errors. Tiny sizes (--reps 1,
# --min-time 0): this checks what bench reports, never how fast anything is.
set -u
ELM=${ELM_CLI:-build/elm}
PY=/usr/bin/python3
[ -x "$ELM" ] || { echo "SKIP: $ELM not built"; exit 77; }
[ -x "$PY" ] || { echo "SKIP: $PY not found"; exit 77; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok() { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL: $*"; }
quick="--reps 1 --min-time 0"

# Every standard config by name, in JSON: one array, the required keys, sane values.
for cfg in neuronio-dm15 neuronio-dm100 shd pathfinder; do
    "$ELM" bench --config $cfg --mode train --batch 2 --steps 12 $quick --json > "$T/$cfg.json" \
        && ok || bad "bench --config $cfg --json exits non-zero"
done
"$ELM" bench --config neuronio-dm15 --mode stream --batch 1 --steps 30 $quick --json \
    > "$T/stream.json" && ok || bad "bench stream"
"$ELM" bench --config neuronio-dm15 --mode infer --batch 9 --steps 20 --threads 2 $quick --json \
    > "$T/threads.json" && ok || bad "bench --threads 2"
$PY - "$T" <<'PYEOF' && ok || bad "bench JSON contents"
import json, sys, platform
d = sys.argv[1]
need = ["config", "mode", "batch", "steps", "threads", "sample_steps_per_s", "gflops",
        "core_peak_gflops", "fraction_of_core_peak", "fraction_of_reference_peak",
        "ratio_to_reference", "peak_rss_mb"]
for name, mode, B, T, thr in [("neuronio-dm15", "train", 2, 12, 1), ("neuronio-dm100", "train", 2, 12, 1),
                             ("shd", "train", 2, 12, 1), ("pathfinder", "train", 2, 12, 1),
                             ("stream", "stream", 1, 30, 1), ("threads", "infer", 9, 20, 2)]:
    a = json.load(open(f"{d}/{name}.json"))
    assert isinstance(a, list) and len(a) == 1, (name, a)
    o = a[0]
    for k in need:
        assert k in o, (name, k)
    assert o["mode"] == mode and o["batch"] == B and o["steps"] == T and o["threads"] == thr, o
    assert o["sample_steps_per_s"] > 0 and o["peak_rss_mb"] > 0, o
    # Not the page's batch and length: no ratio to its figure.
    assert o["ratio_to_reference"] is None, o
    if platform.machine() == "x86_64":
        assert o["core_peak_gflops"] > 1, o
        assert abs(o["fraction_of_core_peak"] - o["gflops"] / (o["core_peak_gflops"] * thr)) < 1e-3 * o["fraction_of_core_peak"] + 1e-9, o
    assert abs(o["fraction_of_reference_peak"] - o["gflops"] / (216.0 * thr)) < 1e-3 * o["fraction_of_reference_peak"] + 1e-9, o
PYEOF

# Text output: the measured peak line and the table header.
"$ELM" bench --config pathfinder --mode infer --batch 1 --steps 16 $quick > "$T/text" 2>&1 \
    && ok || bad "bench text"
grep -q "peak, measured here" "$T/text" && ok || bad "no peak line: $(cat "$T/text")"
grep -q "sample-steps/s" "$T/text" && grep -q "%peak" "$T/text" && ok || bad "no table header"

# A model config file as --config.
cat > "$T/model_config.json" <<'EOF'
{"num_input": 20, "num_output": 3, "num_memory": 7, "mlp_hidden_size": 11}
EOF
"$ELM" bench --config "$T/model_config.json" --batch 3 --steps 10 $quick --json > "$T/file.json" \
    && ok || bad "bench --config FILE"
$PY -c 'import json,sys; o=json.load(open(sys.argv[1]))[0]; assert o["batch"]==3 and o["steps"]==10 and o["mode"]=="train", o' \
    "$T/file.json" && ok || bad "bench --config FILE JSON"

# The data paths alone.
"$ELM" bench --data --min-time 0 --json > "$T/data.json" && ok || bad "bench --data"
$PY -c 'import json,sys; a=json.load(open(sys.argv[1])); assert a and all(o["mode"]=="data" and o["per_s"]>0 for o in a), a' \
    "$T/data.json" && ok || bad "bench --data JSON"

# Errors: usage errors exit 2 naming the problem.
expect_usage() { # expect_usage WORD -- CMD
    local w=$1; shift 2
    "$@" >"$T/out" 2>"$T/err"; local rc=$?
    [ $rc -eq 2 ] || { bad "expected exit 2 from: $* (got $rc)"; return; }
    grep -q -- "$w" "$T/err" && ok || bad "message lacks '$w': $(cat "$T/err")"
}
expect_usage "neither a standard" -- "$ELM" bench --config no-such-config
expect_usage "--mode must be" -- "$ELM" bench --mode fly
expect_usage "unknown argument" -- "$ELM" bench --frobnicate
expect_usage "out of range" -- "$ELM" bench --batch -3
# A config file with an unknown key fails, naming the key.
echo '{"num_input": 2, "num_output": 1, "num_memory": 3, "no_such_key": 1}' > "$T/badcfg.json"
"$ELM" bench --config "$T/badcfg.json" $quick >"$T/out" 2>"$T/err"
[ $? -ne 0 ] && grep -q "no_such_key" "$T/err" && ok || bad "bad config file: $(cat "$T/err")"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
