#!/usr/bin/env python3
"""widen_mlp.py - a trained ELM with a wider MLP that computes exactly what the trained one does.

Pathfinder's curves (docs/results/pathfinder.md) flatten at contour length 14 while the
training loss keeps falling below the validation loss; one question for a larger neuron is
whether more MLP units help, and a larger neuron trained from scratch has to sit through the
whole curriculum again (tens of hours here). This grows a trained one instead, the Net2Net way
(Chen et al., ICLR 2016): every hidden layer keeps its trained units and gains new ones whose
incoming weights and biases are a fresh model's initialisation (seeded) and whose outgoing
weights are zero. The new units feed nothing yet, so the grown model's outputs are the trained
model's (checked below on random input before anything is written); their outgoing weights
get gradients from the first batch (a ReLU unit with input passes its activation on), so
training with `elm train ... --init OUT/model.safetensors` starts where the trained model
stopped and can use the new units.

Only the MLP's width changes: memory units, branches and time constants stay as trained
(growing d_m would move every unit's fixed time constant, since they are spread over
[memory_tau_min, memory_tau_max]).

usage: PYTHONPATH=python /usr/bin/python3 scripts/widen_mlp.py --model RUN/model.safetensors \
           --hidden 300 --out GROWN [--seed 1]
GROWN receives model.safetensors and model_config.json. A research tool, not part of elm.
"""
import argparse
import os
import sys

import numpy as np

import elm


def widen(old, hidden, seed):
    cfg = dict(old.config)
    if hidden < cfg["mlp_hidden_size"]:
        raise SystemExit(f"widen_mlp: --hidden {hidden} is below the model's "
                         f"mlp_hidden_size {cfg['mlp_hidden_size']}: this tool only grows")
    h0 = cfg["mlp_hidden_size"]
    cfg["mlp_hidden_size"] = hidden
    new = elm.Model(cfg, seed=seed, dtype=old.dtype)
    p_old, p = old.parameters(), new.parameters()
    layers = sorted({int(k.split(".")[2]) for k in p if k.startswith("mlp.network.")})
    for name, v in p_old.items():
        w = p[name]
        if w.shape == v.shape:
            w[...] = v
            continue
        if not name.startswith("mlp.network."):
            raise SystemExit(f"widen_mlp: {name} changes shape {v.shape} -> {w.shape}")
        idx = int(name.split(".")[2])
        # rows: this layer's own units (kept, then the fresh ones); columns: the layer's
        # inputs, where the units that the widening added below it must not count yet.
        rows = slice(0, v.shape[0])
        if idx != layers[0] and name.endswith(".weight"):
            w[:, h0:] = 0.0
        w[(rows,) + tuple(slice(0, n) for n in v.shape[1:])] = v
    new.set_parameters(p)
    return new


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="trained model (.safetensors or folder)")
    ap.add_argument("--hidden", type=int, required=True, help="new mlp_hidden_size")
    ap.add_argument("--out", required=True, help="new folder for the grown model")
    ap.add_argument("--seed", type=int, default=1, help="seed of the new units' weights")
    a = ap.parse_args()
    if os.path.exists(a.out):
        raise SystemExit(f"widen_mlp: {a.out} exists; choose a new folder")
    old = elm.load(a.model)
    new = widen(old, a.hidden, a.seed)

    x = np.random.default_rng(0).standard_normal((4, 300, old.config["num_input"]))
    x = x.astype(np.float32)
    y0, y1 = old.forward(x), new.forward(x)
    err = float(np.max(np.abs(y0 - y1)) / max(1e-30, float(np.max(np.abs(y0)))))
    # Same products, summed over more (zero) terms: the sums may be grouped differently by
    # the vectorised kernels, so a few float32 roundings (1e-7 each) over 300 steps, no more.
    if not err < 1e-4:
        raise SystemExit(f"widen_mlp: the grown model's outputs differ by {err:.2e} (relative)")
    os.makedirs(a.out)
    new.save(a.out)
    print(f"widen_mlp: {a.model}: mlp_hidden_size {old.config['mlp_hidden_size']} -> "
          f"{a.hidden}, {old.num_params} -> {new.num_params} parameters, outputs equal "
          f"within {err:.1e} (relative, 4 x 300 random steps); wrote {a.out}")


if __name__ == "__main__":
    sys.exit(main())
