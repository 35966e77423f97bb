#!/usr/bin/python3
"""Compare two Pathfinder folders (LRA layout) by simple image statistics.

usage: compare_pathfinder.py DIR_A DIR_B [--json OUT]

Each DIR is a difficulty folder (it holds metadata/). For every image listed in the metadata
(at most --max images, default 400) it measures:
  ink        fraction of pixels >= 32 (of 255)
  nonzero    fraction of pixels > 0
  hist       share of the ink pixels (>= 32) in 7 bins of 32 grey levels (32-63, ..., 224-255)
  mean_ink   mean grey level of the ink pixels
  dashes     8-connected components of ink pixels per image
  dash_len   median over components of their length: the largest distance between two pixel
             centres of a component, plus 1 (px)
  dash_gap   median distance (px) from each dash centroid to the nearest other dash centroid
  paths      connected components after closing gaps: ink pixels dilated by a disk of radius
             `gap` (1 px at 32, 3 px at 64/128) so that the dashes of one path join; crossing
             paths merge, the same way for both folders
  marker     pixels in blobs: ink pixels whose 3x3 neighbourhood (at 32 px; 5x5 at 128 px,
             disk radius 2) is all ink; only the filled circular markers have such a core
Needs numpy and scipy (Debian python3-numpy, python3-scipy) and matplotlib for PNG reading.
"""
import argparse, glob, json, os, sys
import numpy as np
from matplotlib.image import imread
from scipy import ndimage


def load(d, limit):
    lines = []
    files = sorted(glob.glob(os.path.join(d, 'metadata', '*.npy')),
                   key=lambda f: (int(os.path.basename(f)[:-4]) if os.path.basename(f)[:-4].isdigit() else 1 << 60, f))
    for f in files:
        for l in open(f):
            t = l.split()
            if len(t) == 11:
                lines.append((os.path.join(d, t[0], t[1]), int(t[3])))
    lines = lines[:limit]
    ims = [np.rint(imread(p) * 255).astype(np.int32) for p, _ in lines]
    return ims, [y for _, y in lines]


def disk(r):
    y, x = np.ogrid[-r:r + 1, -r:r + 1]
    return x * x + y * y <= r * r


def stats(ims, labels):
    size = ims[0].shape[0]
    gap = 1 if size <= 32 else 3
    core_r = 1 if size <= 32 else 2
    eight = np.ones((3, 3), bool)
    r = dict(ink=[], nonzero=[], mean_ink=[], dashes=[], dash_len=[], dash_gap=[], paths=[],
             marker=[], hist=np.zeros(7))
    for im in ims:
        ink = im >= 32
        r['ink'].append(ink.mean())
        r['nonzero'].append((im > 0).mean())
        v = im[ink]
        r['mean_ink'].append(v.mean() if v.size else 0)
        r['hist'] += np.histogram(v, bins=np.arange(32, 257, 32))[0]
        lab, n = ndimage.label(ink, structure=eight)
        r['dashes'].append(n)
        cents = []
        for k in range(1, n + 1):
            ys, xs = np.nonzero(lab == k)
            pts = np.stack([ys, xs], 1).astype(float)
            dmax = 0.0
            if len(pts) > 1:
                dd = np.sqrt(((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1))
                dmax = dd.max()
            r['dash_len'].append(dmax + 1)
            cents.append(pts.mean(0))
        if len(cents) > 1:
            c = np.array(cents)
            dd = np.sqrt(((c[:, None, :] - c[None, :, :]) ** 2).sum(-1))
            np.fill_diagonal(dd, np.inf)
            r['dash_gap'] += list(dd.min(1))
        closed = ndimage.binary_dilation(ink, structure=disk(gap))
        r['paths'].append(ndimage.label(closed, structure=eight)[1])
        core = ndimage.binary_erosion(ink, structure=disk(core_r), border_value=0)
        r['marker'].append(int(ndimage.binary_dilation(core, structure=disk(core_r)).sum() & 0xffffffff))
    out = {'images': len(ims), 'size': size, 'label1_share': float(np.mean(labels))}
    for k in ('ink', 'nonzero', 'mean_ink', 'dashes', 'paths', 'marker'):
        a = np.array(r[k], float)
        out[k] = [float(a.mean()), float(a.std())]
    out['dash_len_median'] = float(np.median(r['dash_len']))
    out['dash_len_mean'] = float(np.mean(r['dash_len']))
    out['dash_gap_median'] = float(np.median(r['dash_gap']))
    out['hist'] = [float(x) for x in r['hist'] / max(r['hist'].sum(), 1)]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('a')
    ap.add_argument('b')
    ap.add_argument('--max', type=int, default=400)
    ap.add_argument('--json')
    a = ap.parse_args()
    res = {}
    for name, d in (('A', a.a), ('B', a.b)):
        ims, labels = load(d, a.max)
        res[name] = stats(ims, labels)
        res[name]['dir'] = d
    keys = ['images', 'label1_share', 'ink', 'nonzero', 'mean_ink', 'dashes', 'dash_len_median',
            'dash_len_mean', 'dash_gap_median', 'paths', 'marker', 'hist']
    print('%-16s %-36s %-36s' % ('measure', 'A', 'B'))
    for k in keys:
        def f(v):
            if isinstance(v, list) and len(v) == 2:
                return '%.3f +- %.3f' % tuple(v)
            if isinstance(v, list):
                return ' '.join('%.3f' % x for x in v)
            return '%.3f' % v if isinstance(v, float) else str(v)
        print('%-16s %-36s %-36s' % (k, f(res['A'][k]), f(res['B'][k])))
    if a.json:
        json.dump(res, open(a.json, 'w'), indent=1)


if __name__ == '__main__':
    main()
