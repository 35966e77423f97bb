#!/usr/bin/python3
"""plot_sweep.py - draw an `elm sweep` result: a metric against the trainable parameter count.

Usage: plot_sweep.py OUT/results.json [--out DIR] [--prefix P] [--metric NAME ...] [--x KEY]
                     [--title TEXT]
                     [--ref-csv FILE --ref-x COL --ref-y COL [--ref-label TEXT]]
                     [--markdown]

One PNG per metric, DIR/<P><metric>.png (file-name-safe), x = parameters on a log axis (or the
varied KEY given with --x). Lines:
  factors mode   one line per factor, each through the base point and the factor's values;
  vary mode      one line per combination of all varied keys but the last, along the last key
                 (a single line when one key is varied);
  points mode    one line through the points in the grid's order, each labelled by its name.
Each point is labelled with the value that distinguishes it. --ref-csv (repeatable, each with a
--ref-label) overlays a reference curve from a CSV file (e.g. the authors' eval_results.csv of
the released NeuronIO models); --ref-x and --ref-y name its columns.
--markdown prints a Markdown table of every point (varied values, parameters, the metrics, wall
time) to stdout instead of drawing. Only finished points (status "done") are drawn. Needs matplotlib (drawn with the Agg backend).
"""
import argparse
import csv
import json
import math
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def fmt(v):
    if isinstance(v, float) and v == int(v) and abs(v) < 1e15:
        return str(int(v))
    if isinstance(v, float):
        return "%g" % v
    return str(v)


def sort_key(v):
    return (0, v, "") if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, 0, str(v))


def lines_of(doc, rows):
    """Returns [(label, [(row, point_label), ...]), ...] in drawing order."""
    keys = doc.get("keys", [])
    mode = doc.get("mode", "vary")
    out = []
    if mode == "factors":
        base = [r for r in rows if not r.get("factor")]
        factors = []
        for r in rows:
            f = r.get("factor")
            if f and f not in factors:
                factors.append(f)
        for f in factors:
            pts = [r for r in rows if r.get("factor") == f] + base
            pts.sort(key=lambda r: sort_key(r["values"].get(f)))
            out.append((f, [(r, "%s=%s" % (f, fmt(r["values"].get(f)))) for r in pts]))
        if not factors and base:
            out.append(("base", [(r, "base") for r in base]))
    elif mode == "points":
        out.append((None, [(r, r["point"]) for r in rows]))
    else:
        last = keys[-1] if keys else None
        groups = {}
        for r in rows:
            gk = tuple((k, fmt(r["values"].get(k))) for k in keys[:-1])
            groups.setdefault(gk, []).append(r)
        for gk, pts in groups.items():
            pts.sort(key=lambda r: sort_key(r["values"].get(last)))
            label = ", ".join("%s=%s" % kv for kv in gk) if gk else last
            out.append((label, [(r, "%s=%s" % (last, fmt(r["values"].get(last)))) for r in pts]))
    return out


def read_reference(path, xcol, ycol):
    xs, ys = [], []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                xs.append(float(row[xcol]))
                ys.append(float(row[ycol]))
            except (KeyError, ValueError):
                continue
    pts = sorted(zip(xs, ys))
    return [p[0] for p in pts], [p[1] for p in pts]


def print_markdown(doc, metrics):
    keys = doc.get("keys", [])
    cols = ["point"] + keys + ["parameters"] + metrics + ["wall s", "status"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in doc.get("rows", []):
        m = r.get("metrics", {})
        cells = [r["point"]] + [fmt(r["values"].get(k)) for k in keys]
        cells.append(fmt(m["num_params"]) if "num_params" in m else "")
        for k in metrics:
            v = m.get(k)
            cells.append("%.4f" % v if isinstance(v, (int, float)) else "")
        w = m.get("wall_seconds")
        cells.append("%.0f" % w if isinstance(w, (int, float)) else "")
        cells.append(r.get("status", ""))
        print("| " + " | ".join(cells) + " |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results")
    ap.add_argument("--out", default=None)
    ap.add_argument("--metric", action="append", default=None)
    ap.add_argument("--title", default=None)
    ap.add_argument("--ref-csv", action="append", default=[],
                    help="reference curve CSV (repeatable; pair each with --ref-label)")
    ap.add_argument("--ref-x", default="model_stats.model_param_count")
    ap.add_argument("--ref-y", default=None, help="column of the metric (test_results.METRIC)")
    ap.add_argument("--ref-label", action="append", default=[])
    ap.add_argument("--no-labels", action="store_true", help="do not annotate points")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table, no plot")
    ap.add_argument("--prefix", default="", help="prefix of the PNG file names")
    ap.add_argument("--x", default=None,
                    help="a varied key to put on the (log) x axis instead of the parameters "
                         "(for grids whose points all have the same size, e.g. time constants)")
    a = ap.parse_args()
    try:
        with open(a.results) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit("plot_sweep.py: %s: %s" % (a.results, e))
    out = a.out or os.path.dirname(os.path.abspath(a.results))
    metrics = a.metric or [doc.get("metric", "accuracy")]
    if a.markdown:
        print_markdown(doc, metrics)
        return
    rows = [r for r in doc.get("rows", []) if r.get("status") == "done"]
    if not rows:
        sys.exit("plot_sweep.py: %s: no finished points to draw" % a.results)
    for metric in metrics:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        drawn = 0
        for label, pts in lines_of(doc, rows):
            xy = [(r["values"].get(a.x) if a.x else r["metrics"].get("num_params"),
                   r["metrics"].get(metric), pl) for r, pl in pts]
            xy = [p for p in xy if isinstance(p[0], (int, float)) and isinstance(p[1], (int, float))
                  and p[0] > 0 and math.isfinite(p[1])]
            if not xy:
                continue
            ax.plot([p[0] for p in xy], [p[1] for p in xy], "o-", label=label)
            if not a.no_labels:
                for x, y, pl in xy:
                    ax.annotate(pl.split("=")[-1] if "=" in pl else pl, (x, y), fontsize=7,
                                xytext=(3, 3), textcoords="offset points")
            drawn += len(xy)
        for i, ref in enumerate(a.ref_csv):
            rx, ry = read_reference(ref, a.ref_x, a.ref_y or ("test_results." + metric))
            label = a.ref_label[i] if i < len(a.ref_label) else os.path.basename(ref)
            if rx:
                ax.plot(rx, ry, "s--", color=("gray", "black", "brown")[i % 3], alpha=0.6,
                        label=label)
        if not drawn:
            plt.close(fig)
            print("plot_sweep.py: no finished point has '%s' and num_params" % metric,
                  file=sys.stderr)
            continue
        ax.set_xscale("log")
        ax.set_xlabel(a.x if a.x else "trainable parameters")
        ax.set_ylabel(metric)
        title = a.title or "%s: %s vs %s" % (doc.get("task", ""), metric, a.x or "parameters")
        keys = doc.get("keys", [])
        if not a.title and doc.get("mode") == "vary" and len(keys) > 1:
            title += " (along %s)" % keys[-1]
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        fig.tight_layout()
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", metric).strip("_") or "metric"
        path = os.path.join(out, a.prefix + name + ".png")
        fig.savefig(path, dpi=120)
        plt.close(fig)
        print("plot_sweep.py: wrote %s" % path, file=sys.stderr)


if __name__ == "__main__":
    main()
