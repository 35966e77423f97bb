"""Load a trained ELM neuron and predict: whole sequences with forward, then one time step at a
time inside a hand-written simulation loop with step (the neuron as a component of a bigger
simulation).

    PYTHONPATH=python /usr/bin/python3 examples/predict.py [MODEL] [--shd FILE] [--pairs N]

MODEL: a .safetensors file or a folder (default: models/shd-adding, elm's SHD-Adding neuron;
the authors' released folders load too). With --shd, classifies SHD-Adding pairs made from an
SHD file read by elm.data.shd (the label of a pair is (l1 mod 10) + (l2 mod 10)); without it,
random spike trains.
"""
import argparse
import os

import numpy as np

import elm
from elm.data import shd

here = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("model", nargs="?", default=os.path.join(here, "..", "models", "shd-adding"))
ap.add_argument("--shd", help="an SHD file (HDF5)")
ap.add_argument("--pairs", type=int, default=8)
a = ap.parse_args()

m = elm.load(a.model)
cfg = m.config
print(f"{a.model}: {m.num_params} parameters, {cfg['num_input']} inputs, "
      f"{cfg['num_output']} outputs, d_m {cfg['num_memory']}")
rng = np.random.default_rng(0)

# 1. Whole sequences: forward on a batch [B, T, num_input].
if a.shd:
    d = shd.read(a.shd, dense=True)
    i, j = rng.integers(0, len(d["labels"]), (2, a.pairs))
    x = np.concatenate([d["inputs"][i], d["inputs"][j]], axis=1)  # two digits, one after another
    labels = d["labels"][i] % 10 + d["labels"][j] % 10
else:
    x = (rng.random((a.pairs, 200, cfg["num_input"])) < 0.01).astype(np.float32)
    labels = None
y = m.forward(x)                                     # [B, T, num_output]
pred = y[:, -1].argmax(axis=1)                       # the class read at the last step
print("predicted:", pred.tolist())
if labels is not None:
    print("labels:   ", labels.tolist(), f"accuracy {np.mean(pred == labels):.3f}")

# 2. A hand-written simulation loop: the neuron advanced one step at a time, its input made on
# the fly (here: input spikes whose rate follows the neuron's own last output, a closed loop).
s = m.state(batch=1)
inputs, outputs = [], []
rate = 0.01
for t in range(300):
    x_t = (rng.random((1, cfg["num_input"])) < rate).astype(np.float32)
    y_t = m.step(s, x_t)                             # [1, num_output]
    rate = 0.005 + 0.01 / (1 + np.exp(-y_t[0, 0]))  # feedback from the neuron's output
    inputs.append(x_t[0]); outputs.append(y_t[0])
# The same input replayed through forward gives the same outputs (streaming = forward).
replay = m.forward(np.array(inputs)[None])[0]
print(f"closed loop: 300 steps, max |step - forward| = {np.abs(replay - np.array(outputs)).max():.2e}")
