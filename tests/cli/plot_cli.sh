#!/usr/bin/env bash
# `elm plot` (issue 16, items 9 and 13): the interpreter override ELM_PYTHON and the messages when
# no interpreter has matplotlib; the scripts found from an installed copy (share/elm); the memory
# units' traces of `plot neuronio --memory` (checked against the model's own outputs); and
# `plot curves RUN [RUN...]`.
set -u
ELM=${ELM_CLI:-build/elm}
PY=/usr/bin/python3
[ -x "$ELM" ] || { echo "SKIP: $ELM not built"; exit 77; }
$PY -c 'import numpy, matplotlib' 2>/dev/null || {
    echo "SKIP: /usr/bin/python3 lacks numpy or matplotlib"; exit 77; }
ELM=$(cd "$(dirname "$ELM")" && pwd)/$(basename "$ELM")
SRCDIR=$(cd "${ELM_SOURCE_DIR:-$(dirname "$0")/../..}" && pwd)
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
unset ELM_PYTHON ELM_SCRIPTS
pass=0; fail=0
ok() { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL: $*"; }
is_png() { head -c 8 "$1" 2>/dev/null | od -An -tx1 | tr -d ' \n' | grep -q '^89504e470d0a1a0a$'; }

# A tiny data set and run (seconds).
"$ELM" gen neuronio-teacher --sims 2 --seed 1 --out nio >/dev/null 2>&1 || bad "gen"
"$ELM" train neuronio --data nio --out run --epochs 2 --batches-per-epoch 2 \
    --set num_memory=3 --threads 1 >/dev/null 2>&1 || bad "train"

# Fake interpreters: one without matplotlib, one that records its arguments, copies the data
# folder elm hands it, and runs the real one.
mkdir -p fake nompl
cat > nompl/python3 <<'SH'
#!/bin/sh
case "$*" in *"import matplotlib"*) exit 4 ;; esac
exit 0
SH
cat > fake/python3 <<SH
#!/bin/sh
echo "\$1" >> "$T/script.log"
prev=""
for a in "\$@"; do [ "\$prev" = "--dir" ] && cp -r "\$a" "$T/captured"; prev="\$a"; done
exec $PY "\$@"
SH
chmod +x nompl/python3 fake/python3

# 1. ELM_PYTHON without matplotlib: exit 1, the message names it and says what is missing.
ELM_PYTHON=$T/nompl/python3 "$ELM" plot curves run --out c.png >out 2>err
rc=$?
{ [ $rc -eq 1 ] && grep -q "ELM_PYTHON=$T/nompl/python3: no matplotlib" err; } && ok \
    || bad "ELM_PYTHON without matplotlib: rc $rc: $(cat err)"
ELM_PYTHON=$T/none/python3 "$ELM" plot curves run --out c.png >out 2>err
grep -q "not found" err && ok || bad "ELM_PYTHON missing: $(cat err)"
[ ! -e c.png ] && ok || bad "a plot was drawn without an interpreter"

# 2. ELM_PYTHON is used.
ELM_PYTHON=$T/fake/python3 "$ELM" plot curves run --out c.png >out 2>err && is_png c.png && ok \
    || bad "plot curves with ELM_PYTHON: $(cat err)"
grep -q "plot_curves.py" script.log && ok || bad "ELM_PYTHON was not run: $(cat script.log)"

# 3. A python3 on PATH without matplotlib is passed over for /usr/bin/python3; one with it wins.
rm -f c.png script.log
PATH=$T/nompl:$PATH "$ELM" plot curves run --out c.png >out 2>err && is_png c.png && ok \
    || bad "fallback to /usr/bin/python3: $(cat err)"
PATH=$T/fake:$PATH "$ELM" plot curves run --out c.png >out 2>err && grep -q plot_curves script.log \
    && ok || bad "python3 on PATH not preferred: $(cat err)"

# 4. plot curves: errors.
"$ELM" plot curves run --out c.png --metric nope >out 2>err
{ [ $? -eq 1 ] && grep -q "no column nope" err; } && ok || bad "unknown metric: $(cat err)"
"$ELM" plot curves norun --out c.png >out 2>err
{ [ $? -eq 1 ] && grep -q "norun/metrics.csv: No such file" err; } && ok || bad "no run: $(cat err)"
"$ELM" plot curves --out c.png >out 2>err
[ $? -eq 2 ] && ok || bad "plot curves without RUN: not a usage error"

# 4b. Several runs (a run, then one that went on from its model with --init): one figure, the
#     script handed every metrics.csv in order; a missing one is named.
"$ELM" train neuronio --data nio --out run2 --epochs 1 --batches-per-epoch 2 --threads 1 \
    --init run/model.safetensors >/dev/null 2>&1 || bad "train --init"
rm -f cc.png script.log
ELM_PYTHON=$T/fake/python3 "$ELM" plot curves run run2 --out cc.png >out 2>err && is_png cc.png &&
    ok || bad "plot curves of two runs: $(cat err)"
$PY "$SRCDIR/scripts/plot_curves.py" run/metrics.csv run2/metrics.csv --out c2.png --metric nope \
    >out 2>err
grep -q "run/metrics.csv has no column nope" err && ok || bad "two runs, unknown metric: $(cat err)"
"$ELM" plot curves run norun --out c.png >out 2>err
{ [ $? -eq 1 ] && grep -q "norun/metrics.csv: No such file" err; } && ok ||
    bad "second run missing: $(cat err)"

# 5. plot neuronio --memory: a PNG, and the memory traces are the model's: its readout of them,
#    W_y m_t + c_y, is the soma prediction plotted beside (from the batch forward).
rm -rf captured
ELM_PYTHON=$T/fake/python3 "$ELM" plot neuronio --model run --data nio --sim 1 --memory \
    --out m.png >out 2>err && is_png m.png && ok || bad "plot --memory: $(cat err)"
$PY - run/model.safetensors captured <<'PYEOF' && ok || bad "memory traces do not give the outputs"
import json, struct, sys
import numpy as np
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
hdr = json.loads(raw[8:8 + n])
def tensor(name):
    h = hdr[name]
    a, b = h["data_offsets"]
    assert h["dtype"] == "F32", h
    return np.frombuffer(raw[8 + n + a:8 + n + b], dtype="<f4").reshape(h["shape"])
d = sys.argv[2]
mem = np.load(d + "/memory.npy").astype(np.float64)
tau = np.load(d + "/memory_tau.npy").astype(np.float64)
pred = np.load(d + "/soma_pred.npy").astype(np.float64)
W, c = tensor("w_y.weight").astype(np.float64), tensor("w_y.bias").astype(np.float64)
assert mem.shape == (6000, 3), mem.shape
assert np.all(np.isfinite(mem)) and np.abs(mem).max() > 0
soma = (mem @ W[1] + c[1]) / 0.1 - 67.7
err = np.abs(soma - pred).max()
# float32 forward vs float32 step, then the readout in float64: 1e-3 mV is ~1e-4 of the scaled
# output, far above rounding (~1e-6) and far below any real difference.
assert err < 1e-3, err
# tau_m of the default init: log-spaced in [1, 150] (the neuronio task's tau_max).
assert abs(tau.min() - 1) < 1e-3 and abs(tau.max() - 150) < 1e-2, tau
PYEOF
"$ELM" plot neuronio --model run --data nio --sim 0 --out n.png >out 2>err && is_png n.png && ok \
    || bad "plot neuronio without --memory: $(cat err)"

# 7. The sweep plot (issue 16, item 12): x is the varied factor (not the parameter count, which
#    every point here shares), and repeated seeds are one point each: mean and sample std.
$PY - <<'PYEOF2'
import json
rows = []
for tau, accs in ((50, [0.5, 0.6, 0.7]), (500, [0.8, 0.8, 0.8]), (1000, [0.9, 0.7, None])):
    for seed, acc in enumerate(accs, 1):
        m = {"num_params": 30780}
        if acc is not None:
            m["accuracy"] = acc
        rows.append({"point": "memory_tau_max=%d__seed=%d" % (tau, seed), "values":
                     {"memory_tau_max": tau, "seed": seed}, "metrics": m,
                     "status": "done" if acc is not None else "failed"})
json.dump({"task": "shd", "mode": "vary", "metric": "accuracy",
           "keys": ["memory_tau_max", "seed"], "rows": rows}, open("sweep.json", "w"))
rows = [{"point": "base", "factor": "", "status": "done",
         "values": {"num_memory": 15, "mlp_activation": "relu", "seed": 1},
         "metrics": {"AUC": 0.9, "num_params": 6827}},
        {"point": "seed=2", "factor": "seed", "status": "done",
         "values": {"num_memory": 15, "mlp_activation": "relu", "seed": 2},
         "metrics": {"AUC": 0.8, "num_params": 6827}},
        {"point": "mlp_activation=silu", "factor": "mlp_activation", "status": "done",
         "values": {"num_memory": 15, "mlp_activation": "silu", "seed": 1},
         "metrics": {"AUC": 0.7, "num_params": 6827}}]
json.dump({"task": "neuronio", "mode": "factors", "metric": "AUC",
           "keys": ["mlp_activation", "seed"], "rows": rows}, open("factors.json", "w"))
PYEOF2
$PY "$SRCDIR/scripts/plot_sweep.py" sweep.json --out . --print-data >data.txt 2>err \
    && is_png accuracy.png && ok || bad "plot_sweep vary: $(cat err)"
$PY - <<'PYEOF2' && ok || bad "plot_sweep vary data: $(cat data.txt)"
rows = [l.rstrip("\n").split("\t") for l in open("data.txt")]
got = [(r[3], round(float(r[4]), 6), round(float(r[5]), 6), int(r[6])) for r in rows]
# 1000: the failed seed is left out, the two others give mean 0.8 and std 0.141421.
assert got == [("50", 0.6, 0.1, 3), ("500", 0.8, 0.0, 3), ("1000", 0.8, 0.141421, 2)], got
PYEOF2
$PY "$SRCDIR/scripts/plot_sweep.py" factors.json --out . --print-data >data.txt 2>err \
    && is_png AUC.png && ok || bad "plot_sweep factors: $(cat err)"
# The base and its seed-factor twin are one point (mean 0.85), the factor's value another.
grep -q "^AUC	mlp_activation	mlp_activation	relu	0.85	0.0707107	2$" data.txt \
    && grep -q "^AUC	mlp_activation	mlp_activation	silu	0.7	0	1$" data.txt && ok \
    || bad "plot_sweep factors data: $(cat data.txt)"
$PY "$SRCDIR/scripts/plot_sweep.py" sweep.json --markdown > md.txt 2>err
grep -q "| 50 | 3 | 0.6000 +- 0.1000 |" md.txt && ok || bad "markdown seeds table: $(cat md.txt)"

# 6. An installed copy finds its own scripts (share/elm beside bin/), not the source tree's.
BUILD=$(dirname "$ELM")
if cmake --install "$BUILD" --prefix "$T/inst" >/dev/null 2>&1; then
    [ -f inst/share/elm/plot_curves.py ] && [ -f inst/share/elm/plot_neuronio.py ] \
        && [ -f inst/share/elm/plot_sweep.py ] && ok || bad "scripts not installed"
    rm -f script.log c.png
    ELM_PYTHON=$T/fake/python3 inst/bin/elm plot curves run --out c.png >out 2>err && is_png c.png \
        && ok || bad "installed elm: $(cat err)"
    grep -q "^$T/inst/bin/../share/elm/plot_curves.py$" script.log && ok \
        || bad "installed elm ran $(cat script.log)"
else
    bad "cmake --install failed"
fi

echo "plot_cli: $pass passed, $fail failed"
[ $fail -eq 0 ]
