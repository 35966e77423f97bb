#!/usr/bin/python3
"""Draws the figures of `elm plot` from the .npy files the C command computed.

    plot_neuronio.py neuronio   --dir TMP --out FIG.png --t0 MS --t1 MS --n-in N [--title T]
                                [--memory]
    plot_neuronio.py pathfinder --dir TMP --out FIG.png --label L [--title T]

neuronio (like Figure 2 of Spieler et al. 2024): TMP holds raster.npy ((nnz, 2) int32: step,
input id), soma_true.npy, soma_pred.npy, spike_prob.npy ((T,) float32, mV and probability) and
spike_times.npy (output spike times, ms); with --memory also memory.npy ((T, M) float32: the
memory units' values m_t) and memory_tau.npy ((M,) float32: each unit's tau_m in ms).
pathfinder: TMP holds image.npy ((S, S) uint8) and prob.npy ((S*S,) float32: softmax probability
of class 1 of the readout after each pixel, row-major).

Only drawing happens here; every number comes from elm. Needs numpy and matplotlib (Agg).
"""
import argparse
import os
import sys
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

EXC_COLOR = "#d62728"
INH_COLOR = "#1f77b4"
TRUE_COLOR = "black"
PRED_COLOR = "#ff7f0e"
PROB_COLOR = "#2ca02c"


def load(d, name):
    path = os.path.join(d, name)
    try:
        return np.load(path)
    except Exception as e:  # a clear message, not a traceback
        sys.exit("plot_neuronio.py: cannot read %s: %s" % (path, e))


def wrap_title(title, width=110):
    return "\n".join(textwrap.wrap(title, width)) if title else None


def plot_neuronio(a):
    raster = load(a.dir, "raster.npy").reshape(-1, 2)
    soma = load(a.dir, "soma_true.npy").astype(np.float64)
    pred = load(a.dir, "soma_pred.npy").astype(np.float64)
    prob = load(a.dir, "spike_prob.npy").astype(np.float64)
    spikes = load(a.dir, "spike_times.npy").astype(np.float64).reshape(-1)
    T = soma.shape[0]
    t0, t1 = max(0.0, a.t0), min(float(T), a.t1)
    half = a.n_in // 2
    t = np.arange(T)
    win = (t >= t0) & (t < t1)

    if a.memory:
        mem = load(a.dir, "memory.npy").astype(np.float64)
        taus = load(a.dir, "memory_tau.npy").astype(np.float64).reshape(-1)
        if mem.ndim != 2 or mem.shape[0] != T or mem.shape[1] != taus.shape[0]:
            sys.exit("plot_neuronio.py: memory.npy %s does not match %d steps and %d units"
                     % (mem.shape, T, taus.shape[0]))
    rows = 4 if a.memory else 3
    ratios = [2.3, 2.0, 1.2, 2.0][:rows]
    fig, axes = plt.subplots(rows, 1, figsize=(14, 9.5 + (3.2 if a.memory else 0)), sharex=True,
                             gridspec_kw={"height_ratios": ratios})
    ax_in, ax_v, ax_s = axes[:3]

    # Inputs: one dot per input spike, excitatory (ids < n_in/2) red, inhibitory blue.
    sel = (raster[:, 0] >= t0) & (raster[:, 0] < t1)
    r = raster[sel]
    exc = r[:, 1] < half
    dot = 0.6 * max(1.0, 3000.0 / (t1 - t0))  # bigger dots when zoomed in
    ax_in.scatter(r[exc, 0], r[exc, 1], s=dot, c=EXC_COLOR, marker=".", linewidths=0,
                  rasterized=True,
                  label="excitatory (AMPA+NMDA): %.1f spikes/ms" % (exc.sum() / (t1 - t0)))
    ax_in.scatter(r[~exc, 0], r[~exc, 1], s=dot, c=INH_COLOR, marker=".", linewidths=0,
                  rasterized=True,
                  label="inhibitory (GABA_A): %.1f spikes/ms" % ((~exc).sum() / (t1 - t0)))
    ax_in.axhline(half - 0.5, color="0.5", lw=0.6)
    ax_in.set_ylim(-0.5, a.n_in - 0.5)
    ax_in.invert_yaxis()
    ax_in.set_ylabel("input synapse\n(0..%d exc, %d..%d inh)" % (half - 1, half, a.n_in - 1))
    leg = ax_in.legend(loc="upper right", markerscale=12, fontsize=9, framealpha=0.9)
    for h in leg.legend_handles if hasattr(leg, "legend_handles") else leg.legendHandles:
        h.set_sizes([30])

    # Soma voltage: the target (unclipped) and the model's prediction out1 / 0.1 - 67.7 mV.
    clip = np.minimum(soma[win], -55.0)
    rmse = np.sqrt(np.mean((np.minimum(pred[win], -55.0) - clip) ** 2)) if win.any() else 0.0
    ax_v.plot(t[win], soma[win], color=TRUE_COLOR, lw=0.8, label="true soma voltage")
    ax_v.plot(t[win], pred[win], color=PRED_COLOR, lw=1.0, alpha=0.9,
              label="ELM prediction (RMSE %.2f mV, both clipped at -55 mV)" % rmse)
    ax_v.axhline(-55.0, color="0.6", lw=0.6, ls=":")
    ax_v.set_ylabel("soma voltage (mV)")
    ax_v.legend(loc="upper right", fontsize=9, framealpha=0.9)
    ax_v.grid(alpha=0.25)

    # Spikes: true output spikes as vertical lines, predicted probability sigmoid(out0).
    sp = spikes[(spikes >= t0) & (spikes < t1)]
    if len(sp) == 0:  # keep the legend entry, so "no spikes" reads as a fact, not an omission
        ax_s.plot([], [], color=TRUE_COLOR, lw=0.9, label="true output spikes (0)")
    for k, s in enumerate(sp):
        ax_s.axvline(s, color=TRUE_COLOR, lw=0.9, alpha=0.8,
                     label="true output spikes (%d)" % len(sp) if k == 0 else None)
    ax_s.plot(t[win], prob[win], color=PROB_COLOR, lw=1.0, label="predicted spike probability")
    # The probability of a spike in one 1 ms bin rarely nears 1 (timing is uncertain by a few
    # ms), so the axis follows the largest prediction shown rather than fixing [0, 1].
    top = max(0.1, 1.1 * float(prob[win].max())) if win.any() else 1.0
    ax_s.set_ylim(-0.02 * top, min(1.05, top))
    ax_s.set_ylabel("spike probability\n(per 1 ms bin)")
    ax_s.legend(loc="upper right", fontsize=9, framealpha=0.9)
    ax_s.grid(alpha=0.25)
    ax_s.set_xlim(t0, t1)

    if a.memory:
        # Every memory unit's trace, coloured by its time constant on a log scale (the units'
        # tau_m are spaced evenly in log10 at initialisation).
        ax_m = axes[3]
        cmap = plt.get_cmap("viridis")
        lo, hi = float(taus.min()), float(taus.max())
        norm = (matplotlib.colors.LogNorm(vmin=lo, vmax=hi) if lo > 0 and hi > lo
                else matplotlib.colors.Normalize(vmin=lo, vmax=max(hi, lo + 1e-9)))
        for j in np.argsort(-taus):  # slow units first, fast ones drawn on top
            ax_m.plot(t[win], mem[win, j], color=cmap(norm(taus[j])), lw=0.9, alpha=0.85)
        sm = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)
        sm.set_array([])
        # The colour bar sits in an inset right of the panel, so the panel keeps the width of
        # the others (they share the time axis).
        cb = fig.colorbar(sm, cax=ax_m.inset_axes([1.005, 0.0, 0.012, 1.0]))
        cb.set_label("tau_m (ms)")
        ax_m.set_ylabel("memory units m_t\n(%d units)" % taus.shape[0])
        ax_m.grid(alpha=0.25)
    axes[-1].set_xlabel("time (ms)")

    if a.title:
        fig.suptitle(wrap_title(a.title), fontsize=10)
    fig.align_ylabels(axes)
    fig.tight_layout()
    fig.savefig(a.out, dpi=a.dpi)


def plot_pathfinder(a):
    img = load(a.dir, "image.npy")
    prob = load(a.dir, "prob.npy").astype(np.float64).reshape(-1)
    S = img.shape[0]
    fig = plt.figure(figsize=(12, 7.5))
    gs = fig.add_gridspec(2, 2, height_ratios=[2.2, 1.0])
    ax_img = fig.add_subplot(gs[0, 0])
    ax_map = fig.add_subplot(gs[0, 1])
    ax_p = fig.add_subplot(gs[1, :])

    ax_img.imshow(img, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    names = {0: "0 (circles not connected)", 1: "1 (circles connected)"}
    ax_img.set_title("input image, label %s" % names.get(a.label, str(a.label)), fontsize=10)
    ax_img.set_xticks([])
    ax_img.set_yticks([])

    im = ax_map.imshow(prob.reshape(S, S), cmap="RdYlGn", vmin=0, vmax=1,
                       interpolation="nearest")
    ax_map.set_title("readout P(class 1) after each pixel (row-major)", fontsize=10)
    ax_map.set_xticks([])
    ax_map.set_yticks([])
    fig.colorbar(im, ax=ax_map, fraction=0.046, pad=0.04)

    steps = np.arange(prob.shape[0])
    ax_p.plot(steps, prob, color=PROB_COLOR, lw=0.8, label="P(class 1) of the readout")
    ax_p.axhline(0.5, color="0.5", ls="--", lw=0.8, label="decision threshold")
    final = prob[-1]
    correct = (final > 0.5) == (a.label == 1)
    ax_p.plot([steps[-1]], [final], "o", color="black",
              label="final readout %.3f (%s)" % (final, "correct" if correct else "wrong"))
    ax_p.set_xlim(0, prob.shape[0] - 1)
    ax_p.set_ylim(-0.02, 1.02)
    ax_p.set_xlabel("time step (pixel index, row-major; %d x %d image)" % (S, S))
    ax_p.set_ylabel("P(class 1)")
    ax_p.legend(loc="upper left", fontsize=9, framealpha=0.9)
    ax_p.grid(alpha=0.25)
    if a.title:
        fig.suptitle(wrap_title(a.title), fontsize=10)
    fig.tight_layout()
    fig.savefig(a.out, dpi=a.dpi)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("kind", choices=["neuronio", "pathfinder"])
    p.add_argument("--dir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--t0", type=float, default=0.0)
    p.add_argument("--t1", type=float, default=float("inf"))
    p.add_argument("--n-in", type=int, default=1278)
    p.add_argument("--label", type=int, default=-1)
    p.add_argument("--title", default="")
    p.add_argument("--dpi", type=int, default=110)
    p.add_argument("--memory", action="store_true")
    a = p.parse_args()
    try:
        (plot_neuronio if a.kind == "neuronio" else plot_pathfinder)(a)
    except OSError as e:
        sys.exit("plot_neuronio.py: cannot write %s: %s" % (a.out, e))


if __name__ == "__main__":
    main()
