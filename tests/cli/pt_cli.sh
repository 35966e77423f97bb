#!/usr/bin/env bash
# `elm convert MODEL --out FILE` (issue 14, a contract): .pt files that torch.load reads (every
# tensor compared with the source, load_state_dict into a module of the reference's parameter
# names), model_config.json beside them with reals as JSON reals, .pt back to safetensors bit for
# bit, and the authors' released .pt read directly and written back tensor for tensor. The torch
# checks are skipped with a message where /usr/bin/python3 has no torch.
set -u
ELM=${ELM_CLI:-build/elm}
PY=/usr/bin/python3
[ -x "$ELM" ] || { echo "SKIP: $ELM not built"; exit 77; }
[ -x "$PY" ] && "$PY" -c "import numpy" 2>/dev/null || { echo "SKIP: $PY with numpy not found"; exit 77; }
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok() { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL: $*"; }

# Two small models written as safetensors by numpy: v1 unrouted (float64 values that need
# float64), v2 routed (float32).
$PY - "$T" <<'PYEOF' || { echo "FAIL: cannot make the models"; exit 1; }
import json, struct, sys
import numpy as np
d = sys.argv[1]
def save(path, tensors, meta):
    hdr, off, blobs = {"__metadata__": meta}, 0, []
    for k, a in tensors.items():
        b = a.tobytes()
        hdr[k] = {"dtype": {"float32": "F32", "float64": "F64", "int64": "I64", "bool": "BOOL"}[str(a.dtype)],
                  "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        off += len(b); blobs.append(b)
    h = json.dumps(hdr).encode()
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
rng = np.random.default_rng(1)
def mlp(R, M, H, dt):
    return {"mlp.network.0.weight": rng.standard_normal((H, R + M)).astype(dt),
            "mlp.network.0.bias": rng.standard_normal(H).astype(dt),
            "mlp.network.2.weight": rng.standard_normal((M, H)).astype(dt),
            "mlp.network.2.bias": rng.standard_normal(M).astype(dt)}
I, M = 6, 3
t = mlp(I, M, 2 * M, np.float64)
t.update({"w_y.weight": rng.standard_normal((2, M)), "w_y.bias": rng.standard_normal(2),
          "_proto_w_s": np.array([0.5, 0, -1, 2, 3, 1e-3]), "tau_s": np.full(I, 5.0),
          "_proto_tau_m": np.array([-np.inf, 0.1, np.inf]),
          "input_to_synapse_indices": np.zeros(0), "valid_indices_mask": np.zeros(0)})
save(f"{d}/v1.safetensors", t, {"elm_version": "v1", "num_input": "6", "num_output": "2",
     "num_memory": "3", "memory_tau_max": "150.0"})
R, P = 2, 4
t = mlp(R, M, 2 * M, np.float32)
t.update({"w_y.weight": rng.standard_normal((2, M)).astype(np.float32),
          "w_y.bias": rng.standard_normal(2).astype(np.float32),
          "_proto_w_s": rng.standard_normal(R * P).astype(np.float32),
          "tau_b": np.array([5, 0], dtype=np.float32),
          "_proto_tau_m": np.array([-1, 0.5, np.inf], dtype=np.float32),
          "input_to_synapse_indices": rng.integers(0, I, R * P).astype(np.int64),
          "valid_indices_mask": np.ones(R * P, dtype=np.int64)})
save(f"{d}/v2.safetensors", t, {"elm_version": "v2", "num_input": "6", "num_output": "2",
     "num_memory": "3", "num_branch": "2", "num_synapse_per_branch": "4",
     "input_to_synapse_routing": "random_routing", "lambda_value": "5"})
H = 4
t = {"lstm.weight_ih_l0": rng.standard_normal((4 * H, I)).astype(np.float32),
     "lstm.weight_hh_l0": rng.standard_normal((4 * H, H)).astype(np.float32),
     "lstm.bias_ih_l0": rng.standard_normal(4 * H).astype(np.float32),
     "lstm.bias_hh_l0": rng.standard_normal(4 * H).astype(np.float32),
     "readout.weight": rng.standard_normal((2, H)).astype(np.float32),
     "readout.bias": rng.standard_normal(2).astype(np.float32)}
save(f"{d}/lstm.safetensors", t, {"model_type": "lstm", "num_input": "6", "num_output": "2",
     "lstm_hidden_size": "4"})
PYEOF

for m in v1 v2 lstm; do
    mkdir -p "$T/$m"
    "$ELM" convert "$T/$m.safetensors" --out "$T/$m/model.pt" && ok || bad "convert $m to .pt"
    [ -f "$T/$m/model_config.json" ] && ok || bad "$m: no model_config.json beside the .pt"
    "$ELM" convert "$T/$m/model.pt" --out "$T/$m/back.safetensors" && ok || bad "convert $m back"
    "$ELM" convert "$T/$m" --out "$T/$m/folder.safetensors" && ok || bad "convert the folder $m"
    cmp -s "$T/$m/back.safetensors" "$T/$m/folder.safetensors" && ok || bad "$m: folder and file differ"
done

# Reals stay reals in model_config.json, integers integers.
$PY - "$T" <<'PYEOF' && ok || bad "model_config.json types"
import json, sys
d = sys.argv[1]
reals = {"lambda_value", "tau_s_value", "tau_b_value", "memory_tau_min", "memory_tau_max",
         "w_s_value", "delta_t"}
for m, tau in (("v1", "tau_s_value"), ("v2", "tau_b_value"), ("lstm", "lstm_hidden_size")):
    c = json.load(open(f"{d}/{m}/model_config.json"))
    assert tau in c, (m, c)
    for k, v in c.items():
        if k in reals:
            assert type(v) is float, (m, k, v)
        elif k in ("num_input", "num_output", "num_memory", "mlp_num_layers", "num_branch",
                   "num_synapse_per_branch", "mlp_hidden_size", "lstm_hidden_size"):
            assert type(v) is int, (m, k, v)
PYEOF

# info reads a .pt directly.
"$ELM" info "$T/v1/model.pt" --json > "$T/info.json" && ok || bad "info on a .pt"

if ! $PY -c "import torch" 2>/dev/null; then
    echo "note: $PY has no torch (apt-get install python3-torch): torch.load checks skipped"
else
    $PY - "$T" "${ELM_SHARED:-}" <<'PYEOF' && ok || bad "torch.load of elm's .pt files"
import json, struct, sys, os, glob
import numpy as np, torch
d, shared = sys.argv[1], sys.argv[2]
def load_st(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n]); out = {}
    for k, v in h.items():
        if k == "__metadata__":
            continue
        dt = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "BOOL": np.bool_}[v["dtype"]]
        s, e = v["data_offsets"]
        out[k] = np.frombuffer(b[8 + n + s:8 + n + e], dtype=dt).reshape(v["shape"])
    return out
for m in ("v1", "v2", "lstm"):
    src = load_st(f"{d}/{m}.safetensors")
    sd = torch.load(f"{d}/{m}/model.pt", map_location="cpu")
    assert set(sd) == set(src), (m, set(sd) ^ set(src))
    for k, a in src.items():
        t = sd[k].numpy()
        assert t.shape == a.shape, (m, k, t.shape, a.shape)
        assert t.tobytes() == a.astype(t.dtype).tobytes(), (m, k)
        assert np.array_equal(t.astype(np.float64), a.astype(np.float64), equal_nan=True), (m, k)
    # load_state_dict(strict) into a module with the same parameter names and shapes.
    mod = torch.nn.Module()
    for k, a in src.items():
        parts = k.split(".")
        parent = mod
        for p in parts[:-1]:
            if not hasattr(parent, p):
                parent.add_module(p, torch.nn.Module())
            parent = getattr(parent, p)
        parent.register_parameter(parts[-1], torch.nn.Parameter(
            torch.zeros(a.shape, dtype=sd[k].dtype), requires_grad=False))
    mod.load_state_dict(sd)
# The LSTM's tensors are those of torch's own nn.LSTM and nn.Linear: load them into the real thing.
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(6, 4, batch_first=True)
        self.readout = torch.nn.Linear(4, 2)
Net().load_state_dict(torch.load(f"{d}/lstm/model.pt"))
# The authors' released models: read directly, written back, torch.load gives the same tensors.
if shared and os.path.isdir(f"{shared}/models/neuronio"):
    import subprocess
    elm = os.environ.get("ELM_CLI", "build/elm")
    n = 0
    for f in sorted(glob.glob(f"{shared}/models/neuronio/*/neuronio_best_model_state.pt")):
        out = f"{d}/rel{n}/model.pt"
        os.makedirs(os.path.dirname(out))
        subprocess.run([elm, "convert", os.path.dirname(f), "--out", out], check=True)
        a = torch.load(f, map_location="cpu"); b = torch.load(out, map_location="cpu")
        assert set(a) == set(b), f
        for k in a:
            assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape and torch.equal(a[k].cpu(), b[k]), (f, k)
        n += 1
    assert n == 15, n
    print(f"{n} released models written back as .pt: torch.load gives the same tensors")
PYEOF
fi

# Clear errors.
"$ELM" convert "$T/v1.safetensors" --out "$T/x.bin" 2>"$T/err"; [ $? = 2 ] && grep -q "must end in .safetensors or .pt" "$T/err" && ok || bad "unknown extension"
"$ELM" convert "$T/v1.safetensors" 2>"$T/err"; [ $? = 2 ] && grep -q "\-\-out FILE is required" "$T/err" && ok || bad "missing --out"
printf 'PK\003\004garbage' > "$T/bad.pt"
"$ELM" info "$T/bad.pt" 2>"$T/err"; [ $? = 1 ] && grep -q "bad.pt: not a readable zip archive" "$T/err" && ok || bad "garbage .pt: $(cat "$T/err")"
"$ELM" convert --help | grep -q "torch.load" && ok || bad "convert --help"

echo "$pass passed, $fail failed"
[ $fail = 0 ]
