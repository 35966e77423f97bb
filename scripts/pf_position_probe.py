#!/usr/bin/env python3
"""pf_position_probe.py - does a position signal let the pixel-by-pixel ELM learn Pathfinder?

A pixel stream carries no coordinates: to relate a pixel to the one above it, 32 steps
earlier, the neuron has to count. This probe trains elm.torch.ELM (elm's C forward and BPTT)
with a torch Adam loop on a Pathfinder folder, with the pixel ((p / 255 - 0.5) / 0.5, as the
task) as input 0 and, with --pos col, sin and cos of the column's phase (2 pi col / size) as
inputs 1-2 (--pos colrow adds the row, scaled to [-1, 1]); --pos none is the task's input.
The readout is the last step, the loss cross-entropy, the schedule cosine, as in
`elm train pathfinder`. Prints and writes OUT/curve.csv: batch, images, mean training loss
since the last line, accuracy and loss on 2000 held-out images.
(docs/results/pathfinder.md; a research probe, not a task of elm train.)

usage: PYTHONPATH=python /usr/bin/python3 scripts/pf_position_probe.py \
           --data DIR/pathfinder32/curv_baseline --pos col --out OUT [--batches 20000]
Needs numpy, Pillow and torch (scripts/setup.sh).
"""
import argparse
import glob
import os
import time

import numpy as np
import torch
from PIL import Image

import elm
import elm.torch


def load(folder):
    """All images of an LRA-layout folder as uint8 rows, and their labels (metadata field 3)."""
    rows = []
    for f in sorted(glob.glob(os.path.join(folder, "metadata", "*.npy"))):
        with open(f) as fh:
            rows += [line.split() for line in fh if line.strip()]
    if not rows:
        raise SystemExit(f"pf_position_probe: no metadata/*.npy in {folder}")
    X = np.stack([np.asarray(Image.open(os.path.join(folder, r[0], r[1])), np.uint8).ravel()
                  for r in rows])
    return X, np.array([int(r[3]) for r in rows], np.int64)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--pos", default="col", choices=["none", "col", "colrow"])
    ap.add_argument("--batches", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--eval-every", type=int, default=1000)
    ap.add_argument("--tau-min", type=float, default=30)
    ap.add_argument("--tau-max", type=float, default=2000)
    ap.add_argument("--num-memory", type=int, default=100)
    ap.add_argument("--hidden", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()

    X, Y = load(a.data)
    rng = np.random.default_rng(a.seed)
    perm = rng.permutation(len(Y))
    nv = min(2000, len(Y) // 10)
    val, train = perm[:nv], perm[nv:]
    S = int(round(np.sqrt(X.shape[1])))
    t = np.arange(S * S)
    col, row = t % S, t // S
    chans = [np.zeros(S * S)]  # replaced by the pixel
    if a.pos != "none":
        chans += [np.sin(2 * np.pi * col / S), np.cos(2 * np.pi * col / S)]
    if a.pos == "colrow":
        chans += [row / (S - 1) * 2 - 1]
    P = np.stack(chans, 1).astype(np.float32)

    def batch(idx):
        x = np.broadcast_to(P, (len(idx),) + P.shape).copy()
        x[:, :, 0] = (X[idx].astype(np.float32) / 255 - 0.5) / 0.5
        return torch.from_numpy(x), torch.from_numpy(Y[idx])

    elm.set_num_threads(a.threads)
    net = elm.torch.ELM(num_input=P.shape[1], num_output=2, num_memory=a.num_memory,
                        mlp_hidden_size=a.hidden, memory_tau_min=a.tau_min,
                        memory_tau_max=a.tau_max, seed=a.seed, dtype=torch.float32)
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, a.batches)
    os.makedirs(a.out, exist_ok=True)
    ce = torch.nn.functional.cross_entropy
    with open(os.path.join(a.out, "curve.csv"), "w") as log:
        log.write("batch,images,train_loss,valid_accuracy,valid_loss,seconds\n")
        t0, run, k = time.time(), 0.0, 0
        for b in range(1, a.batches + 1):
            x, y = batch(train[rng.integers(0, len(train), a.batch)])
            loss = ce(net(x)[:, -1, :], y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            run, k = run + loss.item(), k + 1
            if b % a.eval_every and b != a.batches:
                continue
            right, vloss = 0, 0.0
            with torch.no_grad():
                for i in range(0, nv, 100):
                    x, y = batch(val[i:i + 100])
                    o = net(x)[:, -1, :]
                    right += (o.argmax(1) == y).sum().item()
                    vloss += ce(o, y, reduction="sum").item()
            line = (f"{b},{b * a.batch},{run / k:.5f},{right / nv:.4f},{vloss / nv:.5f},"
                    f"{time.time() - t0:.0f}")
            print(line, flush=True)
            log.write(line + "\n")
            log.flush()
            run, k = 0.0, 0
    net.to_model().save(os.path.join(a.out, "model.safetensors"))


if __name__ == "__main__":
    main()
