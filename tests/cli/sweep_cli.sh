#!/usr/bin/env bash
# `elm sweep` on the tiny SHD fixture: point expansion (vary, factors, points), parallel children,
# results tables, skipping finished points, resuming stopped ones, reporting a failed point,
# refusing a changed point, usage errors. Each training run takes well under a second.
# Skips (77) when the CLI has not been built; reports skipped (77) when matplotlib is missing,
# since the plot is then not checked.
set -u
cli=${ELM_CLI:-}
src=${ELM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ -z "$cli" ] || [ ! -x "$cli" ]; then
    echo "SKIP: \$ELM_CLI (the built elm) is not set or not executable: '${cli}'"
    exit 77
fi
export ELM_SCRIPTS=$src/scripts
. "$src/tests/testlib.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/data"
ln -s "$src/tests/fixtures/shd_tiny.h5" "$tmp/data/shd_train.h5"
ln -s "$src/tests/fixtures/shd_tiny.h5" "$tmp/data/shd_test.h5"
cd "$tmp"
small=(--epochs 1 --batches-per-epoch 2 --jobs 2 --threads-per-job 1)

# --- Expansion (dry run: nothing is trained or written) ---
cat >vary.json <<'EOF'
{"base": {"eval_samples": 4, "batch_size": 4},
 "vary": {"num_memory": [1, 2, 3], "mlp_num_layers": [0, 1]}}
EOF
"$cli" sweep --task shd --data data --grid vary.json --out dry --dry-run >dry.txt 2>dry.err ||
    bad "dry run exited $?: $(cat dry.err)"
n=$(grep -c '^num_memory=' dry.txt)
[ "$n" = 6 ] || bad "vary: $n points, want 6 (3 x 2)"
pt=num_memory=3__mlp_num_layers=1
grep -q "^$pt: elm train shd --data data --out dry/runs/$pt --config dry/runs/$pt/point.json --threads [0-9]* --force\$" dry.txt ||
    bad "vary: point argv not as expected: $(grep "^$pt" dry.txt)"
grep -q '"num_memory":3,"mlp_num_layers":1' dry.txt || bad "vary: point config lacks values"
[ ! -e dry ] || bad "dry run created the output folder"

cat >factors.json <<'EOF'
{"base": {"eval_samples": 4, "batch_size": 4, "num_memory": 2},
 "factors": {"num_memory": [1, 2, 3], "lambda_value": [1, 5]}}
EOF
"$cli" sweep --task shd --data data --grid factors.json --out dryf --dry-run >dryf.txt 2>dryf.err ||
    bad "factors dry run failed: $(cat dryf.err)"
names=$(grep -o '^[^ :]*:' dryf.txt | tr -d ':' | tr '\n' ' ')
# num_memory=2 is the base point itself, so it is not repeated.
[ "$names" = "base num_memory=1 num_memory=3 lambda_value=1 lambda_value=5 " ] ||
    bad "factors: points '$names'"

# --- A grid with a misspelt key is refused before anything starts (issue 16) ---
cat >typo.json <<'EOF'
{"base": {"eval_samples": 4, "batch_size": 4},
 "points": [{"name": "small", "num_memory": 1}, {"name": "typo", "num_memroy": 3}]}
EOF
"$cli" sweep --task shd --data data --grid typo.json --out swt "${small[@]}" >out.txt 2>err.txt
rc=$?
[ $rc = 1 ] && grep -q "unknown option 'num_memroy' (did you mean 'num_memory'?).*(point typo)" err.txt &&
    [ ! -e swt ] || bad "a misspelt key was not refused up front (exit $rc): $(cat err.txt)"

# --- A real sweep: 2 jobs, one point fails when it runs (a window length SHD cannot take),
# the others finish ---
cat >pts.json <<'EOF'
{"base": {"eval_samples": 4, "batch_size": 4},
 "points": [{"name": "small", "num_memory": 1}, {"num_memory": 3},
            {"name": "typo", "seq_len": 7}]}
EOF
"$cli" sweep --task shd --data data --grid pts.json --out sw "${small[@]}" >out.txt 2>err.txt
rc=$?
[ $rc = 1 ] || bad "sweep with a failing point exited $rc, want 1"
grep -q "typo: FAILED (exit 1).*seq_len 7" err.txt ||
    bad "failed point not reported with its reason: $(cat err.txt)"
for p in small num_memory=3; do
    [ -f "sw/runs/$p/test_metrics.json" ] || bad "point $p not finished"
    [ -f "sw/runs/$p/train.log" ] && [ -f "sw/runs/$p/point.json" ] || bad "point $p files"
done
/usr/bin/python3 - sw <<'PY' || bad "results tables"
import csv, json, sys
d = sys.argv[1]
rows = list(csv.DictReader(open(d + "/results.csv")))
assert [r["point"] for r in rows] == ["small", "num_memory=3", "typo"], rows
assert [r["status"] for r in rows] == ["done", "done", "failed"], rows
assert rows[0]["num_memory"] == "1" and rows[1]["num_memory"] == "3", rows
# Parameters of the shd ELM (700 inputs, 20 outputs): grows with num_memory.
assert 0 < int(rows[0]["num_params"]) < int(rows[1]["num_params"]), rows
# Test and validation scores apart (issue 16): test_* from shd_test.h5, valid_* from the
# held-out part of shd_train.h5; no unprefixed score that could be either.
for k in ("test_accuracy", "test_loss", "train_seconds", "best_epoch", "valid_accuracy",
          "train_loss"):
    assert rows[0][k] != "" and rows[2][k] == "", (k, rows)
# Wall time is kept for every point that ran, failed ones included.
assert float(rows[0]["wall_seconds"]) > 0 and float(rows[2]["wall_seconds"]) > 0, rows
j = json.load(open(d + "/results.json"))
assert "accuracy" not in rows[0] and "loss" not in rows[0], list(rows[0])
assert j["task"] == "shd" and j["mode"] == "points" and j["metric"] == "test_accuracy", j
assert j["keys"] == ["num_memory", "seq_len"], j["keys"]
assert "confusion" not in j["rows"][0]["metrics"], "arrays must stay in the run folder"
cfg = json.load(open(d + "/runs/small/point.json"))
assert cfg == {"eval_samples": 4, "batch_size": 4, "num_memory": 1}, cfg
PY
# A score that is NaN (null in the run's JSON: an AUC without a spike) in every finished point
# keeps its column, as "nan"; a point without scores leaves it empty.
/usr/bin/python3 - sw <<'PY' || bad "could not edit the finished points"
import json, sys
for p in ("small", "num_memory=3"):
    f = sys.argv[1] + "/runs/" + p + "/test_metrics.json"
    t = json.load(open(f)); t["test_nanscore"] = None; json.dump(t, open(f, "w"))
    f = sys.argv[1] + "/runs/" + p + "/metrics.json"
    m = json.load(open(f))
    for r in m:
        r["nanscore"] = None
    json.dump(m, open(f, "w"))
PY
"$cli" sweep --task shd --data data --grid pts.json --out sw "${small[@]}" >out.txt 2>err.txt
/usr/bin/python3 - sw <<'PY' || bad "a score that is NaN in every point lost its column"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1] + "/results.csv")))
for k in ("test_nanscore", "valid_nanscore"):
    assert [r[k] for r in rows] == ["nan", "nan", ""], (k, rows)
PY
if /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
    [ -s sw/test_accuracy.png ] || bad "no plot sw/test_accuracy.png: $(cat err.txt)"
else
    skip_part "/usr/bin/python3 has no matplotlib: the sweep's plot not checked"
fi

# --- Rerun: finished points are not trained again; the failed one is retried ---
before=$(stat -c %Y sw/runs/small/model.safetensors)
"$cli" sweep --task shd --data data --grid pts.json --out sw "${small[@]}" --no-plot >out.txt 2>err.txt
grep -q "2 finished, 1 to run" err.txt || bad "rerun did not skip finished points: $(head -1 err.txt)"
grep -q "small: started" err.txt && bad "finished point trained again"
[ "$(stat -c %Y sw/runs/small/model.safetensors)" = "$before" ] || bad "finished model rewritten"

# --- Resume: a time limit stops the points with a checkpoint; a rerun continues them ---
# The points must outlast the 0.2 s limit by a wide margin (about 1 s each uninterrupted here).
cat >seeds.json <<'EOF'
{"base": {"eval_samples": 4, "batch_size": 4, "num_memory": 32}, "vary": {"seed": [1, 2]}}
EOF
long=(--epochs 2 --batches-per-epoch 1000 --jobs 2 --threads-per-job 1 --no-plot)
"$cli" sweep --task shd --data data --grid seeds.json --out rs "${long[@]}" --time-limit 0.2 \
    >out.txt 2>err.txt
rc=$?
[ $rc = 1 ] || bad "stopped sweep exited $rc, want 1 (unfinished points)"
grep -q "seed=1: stopped" err.txt || bad "stop not reported: $(cat err.txt)"
[ -f rs/runs/seed=1/checkpoint/state.json ] || bad "no checkpoint after the time limit"
"$cli" sweep --task shd --data data --grid seeds.json --out rs "${long[@]}" >out.txt 2>err.txt ||
    bad "resumed sweep exited $?: $(cat err.txt)"
grep -q "seed=1: resuming" err.txt || bad "stopped point not resumed: $(cat err.txt)"
grep -q "resuming rs/runs/seed=2 at batch" rs/runs/seed=2/train.log || bad "trainer did not resume"
[ -f rs/runs/seed=2/test_metrics.json ] || bad "resumed point not finished"

# --- A changed grid: the old run is refused, never mixed ---
sed -i 's/"num_memory": 32/"num_memory": 33/' seeds.json
"$cli" sweep --task shd --data data --grid seeds.json --out rs "${long[@]}" >out.txt 2>err.txt
rc=$?
[ $rc = 1 ] || bad "changed grid exited $rc, want 1"
grep -q "point.json differs from the grid's point 'seed=1'" err.txt || bad "no refusal: $(cat err.txt)"

# --- One sweep per folder: a held lock refuses a second invocation ---
mkdir -p locked
/usr/bin/python3 -c '
import fcntl, subprocess, sys
f = open("locked/sweep.lock", "w")
fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
r = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.exit(0 if r.returncode == 1 and "another elm sweep is running" in r.stderr else 1)
' "$cli" sweep --task shd --data data --grid seeds.json --out locked "${long[@]}" ||
    bad "a locked sweep folder was not refused"
[ ! -e locked/runs/seed=1 ] || bad "a refused sweep started a point"

# --- Usage and grid errors ---
"$cli" sweep --task shd --data data --out x >/dev/null 2>err.txt
[ $? = 2 ] || bad "missing --grid: want exit 2"
"$cli" sweep --task shd --data data --grid vary.json --out x --set num_memory=4 >/dev/null 2>err.txt
[ $? = 2 ] && grep -q "which the grid varies" err.txt || bad "--set of a varied key: $(cat err.txt)"
"$cli" sweep --task shd --data data --grid vary.json --out x --threads 2 >/dev/null 2>err.txt
[ $? = 2 ] || bad "--threads should be refused (use --threads-per-job)"
echo '{"vary": {"num_memory": [1]}, "points": [{}]}' >two.json
"$cli" sweep --task shd --data data --grid two.json --out x >/dev/null 2>err.txt
[ $? = 1 ] && grep -q 'two.json: give exactly one of' err.txt || bad "vary + points: $(cat err.txt)"
echo '{"vary": {"num_memory": [1, [2]]}}' >nested.json
"$cli" sweep --task shd --data data --grid nested.json --out x >/dev/null 2>err.txt
[ $? = 1 ] && grep -q "nested.json: values of 'num_memory'" err.txt || bad "nested value: $(cat err.txt)"
echo '{"vary": {"num_memory": [1, 2' >broken.json
"$cli" sweep --task shd --data data --grid broken.json --out x >/dev/null 2>err.txt
[ $? = 1 ] && grep -q "broken.json: invalid JSON" err.txt || bad "broken JSON: $(cat err.txt)"
"$cli" sweep --task nosuch --data data --grid vary.json --out x >/dev/null 2>err.txt
[ $? = 2 ] || bad "unknown task: want exit 2"
[ ! -e x ] || bad "a refused sweep created its output folder"

finish
