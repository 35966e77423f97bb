#!/usr/bin/python3
"""Draws the learning curves of an `elm train` run from its metrics.csv (`elm plot curves`).

    plot_curves.py RUN/metrics.csv [RUN2/metrics.csv ...] --out FIG.png [--metric NAME]...
                   [--title T]

One panel for the training loss (mean over each epoch's batches; log scale when it spans more
than a factor of 10), then one per metric: a column of metrics.csv, per epoch. The trainer's
per-epoch metrics are validation scores, so a column without a test_ prefix is labelled as one.
Without --metric, the task's usual columns that are present: AUC and soma_RMSE (NeuronIO),
accuracy (SHD, Pathfinder), with their valid_ / test_ forms when the trainer writes those. Only
drawing happens here; every number is elm's. Needs matplotlib (Agg).

Several files (a run, then the runs that went on from its model with --init) are drawn one after
another: each run's epochs are counted on from the last epoch of the run before it, and a dashed
line, labelled with the run's folder name, marks where each later run begins.
"""
import argparse
import csv
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

USUAL = ["AUC", "soma_RMSE", "soma_explained_variance_percent", "accuracy"]


def number(s):
    try:
        v = float(s)
    except (TypeError, ValueError):
        return math.nan
    return v


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("csv", nargs="+")
    p.add_argument("--out", required=True)
    p.add_argument("--metric", action="append", default=[])
    p.add_argument("--title", default="")
    p.add_argument("--dpi", type=int, default=110)
    a = p.parse_args()
    rows, cols, starts, offset = [], [], [], 0.0
    for path in a.csv:
        try:
            with open(path, newline="") as f:
                part = list(csv.DictReader(f))
        except OSError as e:
            sys.exit("plot_curves.py: cannot read %s: %s" % (path, e))
        if not part or "epoch" not in part[0]:
            sys.exit("plot_curves.py: %s has no epochs (no rows, or no 'epoch' column)" % path)
        if a.metric:
            missing = [m for m in a.metric if m not in part[0]]
            if missing:
                sys.exit("plot_curves.py: %s has no column %s; it has: %s"
                         % (path, ", ".join(missing), ", ".join(part[0].keys())))
        cols += [c for c in part[0].keys() if c not in cols]
        for r in part:
            r["epoch"] = number(r["epoch"]) + offset
        starts.append((offset, os.path.basename(os.path.dirname(os.path.abspath(path)))))
        offset = max(r["epoch"] for r in part)
        rows += part
    if a.metric:
        metrics = a.metric
    else:
        metrics = [c for u in USUAL for c in (u, "valid_" + u, "test_" + u) if c in cols]
    epochs = [r["epoch"] for r in rows]
    panels = (["train_loss"] if "train_loss" in cols else []) + metrics
    if not panels:
        sys.exit("plot_curves.py: nothing to draw in %s (columns: %s)"
                 % (", ".join(a.csv), ", ".join(cols)))
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 2.6 * len(panels) + 0.6), sharex=True,
                             squeeze=False)
    for ax, name in zip(axes[:, 0], panels):
        ys = [number(r.get(name)) for r in rows]
        ax.plot(epochs, ys, "o-", ms=3, lw=1.2)
        finite = [y for y in ys if math.isfinite(y)]
        if name == "train_loss" and finite and min(finite) > 0 and max(finite) > 10 * min(finite):
            ax.set_yscale("log")
        if name == "train_loss":
            label = "training loss"
        elif name.startswith("test_"):
            label = name[5:] + "\n(test)"
        else:
            label = (name[6:] if name.startswith("valid_") else name) + "\n(validation)"
        ax.set_ylabel(label.replace("_", " "))
        ax.grid(alpha=0.3)
        for x0, name_k in starts[1:]:
            ax.axvline(x0 + 0.5, color="0.4", ls="--", lw=1)
            if ax is axes[0, 0]:
                ax.annotate(name_k, (x0 + 0.5, 1), xycoords=("data", "axes fraction"),
                            xytext=(3, -3), textcoords="offset points", va="top", fontsize=8)
    axes[-1, 0].set_xlabel("epoch")
    axes[-1, 0].xaxis.set_major_locator(MaxNLocator(integer=True))
    run = " then ".join(name for _, name in starts)
    fig.suptitle(a.title or "learning curves of %s" % run, fontsize=11)
    fig.tight_layout()
    try:
        fig.savefig(a.out, dpi=a.dpi)
    except OSError as e:
        sys.exit("plot_curves.py: cannot write %s: %s" % (a.out, e))


if __name__ == "__main__":
    main()
