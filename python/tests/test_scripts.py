"""Research scripts of scripts/ that drive elm from Python run on a tiny budget and write what
they say: pf_position_probe.py trains on a generated Pathfinder folder with the input channels
its --pos names and saves a model that elm loads."""
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
