"""Research scripts of scripts/ that drive elm from Python run on a tiny budget and write what
they say: pf_position_probe.py trains on a generated Pathfinder folder with the input channels
its --pos names and saves a model that elm loads; widen_mlp.py grows a model's MLP without
changing what it computes."""
import csv
import os
import subprocess
import sys

import pytest

import elm
from conftest import ROOT, cli_path


@pytest.mark.parametrize("pos,inputs", [("none", 1), ("colrow", 4)])
def test_pf_position_probe(tmp_path, pos, inputs):
    pytest.importorskip("torch", reason="PyTorch (python3-torch) is not installed")
    pytest.importorskip("PIL", reason="Pillow (python3-pil) is not installed")
    data = tmp_path / "data"
    r = subprocess.run([cli_path(), "gen", "pathfinder", "--size", "32", "--contour-length", "6",
                        "--n", "40", "--seed", "3", "--out", str(data)], capture_output=True)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "pf_position_probe.py"),
                        "--data", str(data / "pathfinder32" / "curv_baseline"), "--pos", pos,
                        "--batches", "4", "--eval-every", "2", "--batch", "4",
                        "--threads", "1", "--out", str(out)],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    with open(out / "curve.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(x["batch"]) for x in rows] == [2, 4]
    assert all(0 <= float(x["valid_accuracy"]) <= 1 for x in rows)
    m = elm.load(str(out / "model.safetensors"))
    assert m.config["num_input"] == inputs and m.config["memory_tau_min"] == 30


def _widen(tmp_path, model, hidden, out):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
    return subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "widen_mlp.py"),
                           "--model", str(model), "--hidden", str(hidden), "--out", str(out)],
                          env=env, capture_output=True, text=True, timeout=120)


def test_widen_mlp(tmp_path):
    """Two hidden layers, so that the columns of units added below a layer are checked too:
    the grown model computes what the trained one did, its kept weights are the trained ones,
    and its new units are live (fresh incoming weights) but silent (zero outgoing weights)."""
    np = pytest.importorskip("numpy")
    cfg = dict(num_input=6, num_output=2, num_memory=5, mlp_num_layers=2, mlp_hidden_size=7)
    small = elm.Model(cfg, seed=3)
    p = small.parameters()
    # Trained weights are not an initialisation: make every one nonzero and distinct.
    rng = np.random.default_rng(1)
    small.set_parameters({k: v + 0.1 * rng.standard_normal(v.shape).astype(v.dtype)
                          for k, v in p.items()})
    small.save(str(tmp_path / "small"))
    r = _widen(tmp_path, tmp_path / "small", 11, tmp_path / "big")
    assert r.returncode == 0, r.stderr
    big = elm.load(str(tmp_path / "big"))
    assert big.config["mlp_hidden_size"] == 11
    # Layer 0 gains 4 rows of 6 + 5 inputs and a bias, layer 2 grows from 7 x (7 + 1) to
    # 11 x (11 + 1), the memory-update layer gains 4 columns for each of its 5 rows.
    assert big.num_params == small.num_params + 4 * 12 + (11 * 12 - 7 * 8) + 5 * 4
    a, b = small.parameters(), big.parameters()
    for k in ("mlp.network.0.weight", "mlp.network.2.weight", "mlp.network.4.weight"):
        n, m = a[k].shape
        assert np.array_equal(b[k][:n, :m], a[k]), k
    assert np.count_nonzero(b["mlp.network.0.weight"][7:]) > 0
    assert not b["mlp.network.2.weight"][:, 7:].any()
    assert np.count_nonzero(b["mlp.network.2.weight"][7:, :7]) > 0
    assert not b["mlp.network.4.weight"][:, 7:].any()
    x = rng.standard_normal((2, 50, 6)).astype(np.float32)
    y0, y1 = small.forward(x), big.forward(x)
    assert np.max(np.abs(y0 - y1)) <= 1e-5 * np.max(np.abs(y0))
    # Refusals: an existing folder is not overwritten; a narrower MLP is not a widening.
    r = _widen(tmp_path, tmp_path / "small", 11, tmp_path / "big")
    assert r.returncode != 0 and "exists" in r.stderr
    r = _widen(tmp_path, tmp_path / "small", 5, tmp_path / "narrow")
    assert r.returncode != 0 and "only grows" in r.stderr and not (tmp_path / "narrow").exists()
