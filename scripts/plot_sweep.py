#!/usr/bin/python3
"""plot_sweep.py - draw an `elm sweep` result: a metric against the factor the sweep varied.

Usage: plot_sweep.py OUT/results.json [--out DIR] [--prefix P] [--metric NAME ...] [--x KEY]
                     [--title TEXT]
                     [--ref-csv FILE --ref-x COL --ref-y COL [--ref-label TEXT]]
                     [--markdown]

One PNG per metric, DIR/<P><metric>.png (file-name-safe). The x axis is the varied factor:
  vary mode      the last varied key other than seed; one line per combination of the other
                 varied keys;
  factors mode   one panel per factor, its values on x, the base point among them;
  points mode    the points in the grid's order (or --x KEY).
--x KEY puts another varied key on x, and --x params the trainable parameter count (log axis,
as for the d_m sweeps; every line then shares one axis). Numeric factors are drawn on a log
axis when they span a factor of 10 or more and are all positive, else on a linear one;
non-numeric ones (activation names, ...) as categories. Repeated seeds (a varied key "seed", or
a factor "seed" around the base) are aggregated: each point is the mean over the seeds, with an
error bar of one standard deviation (sample, n - 1) and n in the legend. Each point is labelled
with its value (--no-labels: not). --ref-csv (repeatable, each with a --ref-label) overlays a
reference curve from a CSV file (e.g. the authors' eval_results.csv of the released NeuronIO
models, against parameters: use it with --x params); --ref-x and --ref-y name its columns.
--print-data also prints each drawn point (metric, panel, line, x, mean, std, n; tab-separated).
--markdown prints a Markdown table of every point (varied values, parameters, the metrics, wall
time), and, when seeds repeat, one of the means and standard deviations, to stdout instead of
drawing. Only finished points (status "done") are drawn. Needs matplotlib (Agg backend).
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


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def x_of(r, xkey):
    return r["metrics"].get("num_params") if xkey == "params" else r["values"].get(xkey)


def replicate_groups(rows, xkey, same_keys):
    """Groups rows that differ only in their seed: [(x, [rows])] in x order."""
    groups = {}
    order = []
    for r in rows:
        gk = (fmt(x_of(r, xkey)),) + tuple(fmt(r["values"].get(k)) for k in same_keys)
        if gk not in groups:
            groups[gk] = []
            order.append(gk)
        groups[gk].append(r)
    out = [(x_of(groups[g][0], xkey), groups[g]) for g in order]
    out.sort(key=lambda p: sort_key(p[0]))
    return out


def panels_of(doc, rows, xarg):
    """[(panel title, x key, [(line label, [(x, [replicate rows]), ...]), ...]), ...]."""
    keys = doc.get("keys", [])
    mode = doc.get("mode", "vary")
    nonseed = [k for k in keys if k != "seed"]
    if mode == "factors" and xarg != "params":
        base = [r for r in rows if not r.get("factor") or r.get("factor") == "seed"]
        factors = []
        for r in rows:
            f = r.get("factor")
            if f and f != "seed" and f not in factors:
                factors.append(f)
        if xarg:
            factors = [f for f in factors if f == xarg]
        panels = []
        for f in factors:
            pts = [r for r in rows if r.get("factor") == f] + base
            others = [k for k in nonseed if k != f]
            panels.append((f, f, [(f, replicate_groups(pts, f, others))]))
        if not panels and base:
            panels.append(("base", "seed", [("base", [("base", base)])]))
        return panels
    if mode == "points" and not xarg:
        groups = {}
        order = []
        for r in rows:
            gk = tuple(fmt(r["values"].get(k)) for k in nonseed) or (r["point"],)
            if gk not in groups:
                groups[gk] = []
                order.append(gk)
            groups[gk].append(r)
        return [(None, "point", [(None, [(groups[g][0]["point"], groups[g]) for g in order])])]
    xkey = xarg or (nonseed[-1] if nonseed else "params")
    line_keys = [k for k in nonseed if k != xkey]
    lines = {}
    order = []
    for r in rows:
        lk = tuple((k, fmt(r["values"].get(k))) for k in line_keys)
        if lk not in lines:
            lines[lk] = []
            order.append(lk)
        lines[lk].append(r)
    out = []
    for lk in order:
        label = ", ".join("%s=%s" % kv for kv in lk) if lk else None
        out.append((label, replicate_groups(lines[lk], xkey, line_keys)))
    return [(None, xkey, out)]


def stats(values):
    """mean, sample standard deviation (0 for one value), n of the finite values."""
    v = [x for x in values if is_num(x) and math.isfinite(x)]
    if not v:
        return None, None, 0
    m = sum(v) / len(v)
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0
    return m, sd, len(v)


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
    # Seeds aggregated: one row per point that repeats over seeds.
    if "seed" not in keys and not any(r.get("factor") == "seed" for r in doc.get("rows", [])):
        return
    rows = [r for r in doc.get("rows", []) if r.get("status") == "done"]
    nonseed = [k for k in keys if k != "seed"]
    groups, order = {}, []
    for r in rows:
        gk = tuple(fmt(r["values"].get(k)) for k in nonseed)
        if r.get("factor") == "seed":
            gk = tuple(fmt(v) for v in gk)  # a seed factor repeats the base
        if gk not in groups:
            groups[gk] = []
            order.append(gk)
        groups[gk].append(r)
    print()
    cols = nonseed + ["seeds"] + ["%s (mean +- std)" % k for k in metrics]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for gk in order:
        cells = list(gk) + [str(len(groups[gk]))]
        for k in metrics:
            mean, sd, n = stats([g.get("metrics", {}).get(k) for g in groups[gk]])
            cells.append("" if mean is None else "%.4f +- %.4f" % (mean, sd))
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
    ap.add_argument("--ref-y", default=None, help="column of the metric (test_results.METRIC, "
                    "METRIC without its test_ prefix)")
    ap.add_argument("--ref-label", action="append", default=[])
    ap.add_argument("--no-labels", action="store_true", help="do not annotate points")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table, no plot")
    ap.add_argument("--print-data", action="store_true",
                    help="also print what is drawn: metric, panel, line, x, mean, std, n "
                         "(tab-separated)")
    ap.add_argument("--prefix", default="", help="prefix of the PNG file names")
    ap.add_argument("--x", default=None,
                    help="the varied key on the x axis (default: the factor the sweep varied), "
                         "or 'params' for the trainable parameter count")
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
    panels = panels_of(doc, rows, a.x)
    for metric in metrics:
        fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels) + 0.8, 4.5),
                                 squeeze=False)
        drawn = 0
        for ax, (ptitle, xkey, lines) in zip(axes[0], panels):
            xs_all = [x for _, groups in lines for x, _ in groups]
            numeric = all(is_num(x) for x in xs_all) and xkey != "point"
            cats = [] if numeric else list(dict.fromkeys(fmt(x) for x in xs_all))
            for label, groups in lines:
                xs, ms, sds, ns = [], [], [], []
                for x, reps in groups:
                    mean, sd, n = stats([r["metrics"].get(metric) for r in reps])
                    if mean is None or (numeric and not is_num(x)):
                        continue
                    xs.append(x if numeric else cats.index(fmt(x)))
                    ms.append(mean)
                    sds.append(sd)
                    ns.append(n)
                if not xs:
                    continue
                if a.print_data:
                    for x, mean, sd, n in zip(xs, ms, sds, ns):
                        print("%s\t%s\t%s\t%s\t%.6g\t%.6g\t%d" % (
                            metric, ptitle or "", label or "", fmt(x) if numeric else cats[x],
                            mean, sd, n))
                seeds = max(ns) > 1
                text = label or metric
                if seeds:
                    text += " (mean +- std over %s seeds)" % (
                        ns[0] if min(ns) == max(ns) else "%d-%d" % (min(ns), max(ns)))
                if seeds:
                    ax.errorbar(xs, ms, yerr=sds, fmt="o-", capsize=4, label=text)
                else:
                    ax.plot(xs, ms, "o-", label=text)
                if not a.no_labels:
                    for x, y in zip(xs, ms):
                        ax.annotate(fmt(x) if numeric else cats[x], (x, y), fontsize=7,
                                    xytext=(3, 3), textcoords="offset points")
                drawn += len(xs)
            if numeric:
                pos = [x for x in xs_all if is_num(x)]
                if pos and min(pos) > 0 and max(pos) >= 10 * min(pos):
                    ax.set_xscale("log")
            else:
                ax.set_xticks(range(len(cats)))
                ax.set_xticklabels(cats, rotation=30 if len(cats) > 4 else 0, fontsize=8)
            if xkey == "params":
                for i, ref in enumerate(a.ref_csv):
                    rx, ry = read_reference(ref, a.ref_x, a.ref_y or ("test_results." + re.sub(r"^test_", "", metric)))
                    rlabel = a.ref_label[i] if i < len(a.ref_label) else os.path.basename(ref)
                    if rx:
                        ax.plot(rx, ry, "s--", color=("gray", "black", "brown")[i % 3],
                                alpha=0.6, label=rlabel)
            ax.set_xlabel({"params": "trainable parameters", "point": "point"}.get(xkey, xkey))
            ax.set_ylabel(metric)
            if ptitle:
                ax.set_title("factor %s" % ptitle, fontsize=10)
            ax.grid(True, which="both", alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8)
        if a.ref_csv and not any(p[1] == "params" for p in panels):
            print("plot_sweep.py: --ref-csv curves are drawn against parameters only (--x params)",
                  file=sys.stderr)
        if not drawn:
            plt.close(fig)
            print("plot_sweep.py: no finished point has '%s'" % metric, file=sys.stderr)
            continue
        xname = panels[0][1] if len(panels) == 1 else "each factor"
        title = a.title or "%s: %s vs %s" % (doc.get("task", ""), metric,
                                             {"params": "parameters"}.get(xname, xname))
        fig.suptitle(title, fontsize=11)
        fig.tight_layout()
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", metric).strip("_") or "metric"
        path = os.path.join(out, a.prefix + name + ".png")
        fig.savefig(path, dpi=120)
        plt.close(fig)
        print("plot_sweep.py: wrote %s" % path, file=sys.stderr)


if __name__ == "__main__":
    main()
