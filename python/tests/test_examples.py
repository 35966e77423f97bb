"""The scripts of examples/ run on a tiny budget and do what they say: predict with a model in
elm's released format (streaming equal to forward), fit with elm.torch in a torch loop (the loss
falls), train NeuronIO with elm's trainer, fine-tune the result with a torch optimiser."""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import elm
from conftest import ROOT, cli_path

EX = os.path.join(ROOT, "examples")


def run(script, *args, cwd):
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
    r = subprocess.run([sys.executable, os.path.join(EX, script), *map(str, args)], cwd=cwd,
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"{script}: {r.stderr[-3000:]}"
    return r.stdout


def test_predict(tmp_path):
    out = run("predict.py", "--shd", os.path.join(ROOT, "tests", "fixtures", "shd_tiny.h5"),
              "--pairs", 4, cwd=tmp_path)
    assert "182919 parameters" in out and re.search(r"accuracy \d\.\d{3}", out)
    diff = float(re.search(r"max \|step - forward\| = (\S+)", out).group(1))
    assert diff <= 1e-5


def test_torch_fit(tmp_path):
    pytest.importorskip("torch", reason="PyTorch (python3-torch) is not installed")
    out = run("torch_fit.py", "--steps", 30, cwd=tmp_path)
    losses = [float(v) for v in re.findall(r"loss (\S+)", out)]
    assert len(losses) == 11 and losses[-1] < 0.5 * losses[0], losses


def test_train_then_finetune(tmp_path):
    nio = tmp_path / "nio"
    r = subprocess.run([cli_path(), "gen", "neuronio-teacher", "--sims", "3", "--seed", "5",
                        "--duration-ms", "2000", "--out", str(nio)], capture_output=True)
    assert r.returncode == 0
    out = run("train_neuronio.py", nio, "run", "--tiny", cwd=tmp_path)
    assert "best model's scores:" in out and "valid_soma_RMSE" in out
    trained = elm.load(str(tmp_path / "run"))
    assert trained.config["num_memory"] == 5
    pytest.importorskip("torch", reason="PyTorch (python3-torch) is not installed")
    out = run("finetune.py", "run", nio, "--steps", 3, "--out", "ft", cwd=tmp_path)
    assert "before:" in out and "after:" in out and "saved ft" in out
    tuned = elm.load(str(tmp_path / "ft"))
    a, b = trained.parameters(), tuned.parameters()
    assert set(a) == set(b)
    assert any(not np.array_equal(a[k], b[k]) for k in a)  # the optimiser changed the model
