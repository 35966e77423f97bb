#!/usr/bin/env python3
"""pf_memory_probe.py - a Pathfinder-layout folder whose label needs long memory, and nothing else.

Each 32x32 image holds 60 random bright pixels; label 1 images also hold a bright 3x3 square,
drawn in rows ROW0..ROW1. With the square in the top rows (`--where early`, rows 0-11) the
evidence is 600-1000 pixel steps before the last step, where the ELM reads out; with
`--where late` (rows 22-29) it is under 330 steps before. A model that learns `late` but not
`early` cannot carry information over the long gap, whatever it could do with it. The folder
is read by `elm train pathfinder` like any LRA folder (docs/results/pathfinder.md).

usage: pf_memory_probe.py OUT --where early|late [--n 640] [--seed 0]
Needs numpy only (PNG files are written with zlib).
"""
import argparse
import os
import struct
import zlib

import numpy as np


def write_png_gray(path, img):
    """Writes an (h, w) uint8 array as an 8-bit grayscale PNG."""
    h, w = img.shape
    raw = b"".join(b"\x00" + img[r].tobytes() for r in range(h))

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 9)))
        f.write(chunk(b"IEND", b""))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--where", choices=["early", "late"], required=True)
    ap.add_argument("--n", type=int, default=640)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rows = (0, 12) if a.where == "early" else (22, 30)
    rng = np.random.default_rng(a.seed)
    root = os.path.join(a.out, "pathfinder32", "curv_contour_length_14")
    if os.path.exists(root):
        raise SystemExit(f"{root} exists; choose another OUT")
    os.makedirs(os.path.join(root, "imgs", "0"))
    os.makedirs(os.path.join(root, "metadata"))
    meta = []
    for i in range(a.n):
        img = np.zeros((32, 32), np.uint8)
        img.reshape(-1)[rng.integers(0, 1024, 60)] = 255
        label = i % 2
        if label:
            r, c = rng.integers(*rows), rng.integers(0, 29)
            img[r:r + 3, c:c + 3] = 255
        write_png_gray(os.path.join(root, "imgs", "0", f"sample_{i}.png"), img)
        meta.append(f"imgs/0 sample_{i}.png {i} {label} 1.0 14 2 2 0.5 1 1")
    with open(os.path.join(root, "metadata", "0.npy"), "w") as f:
        f.write("\n".join(meta) + "\n")
    print(f"wrote {a.n} images to {root}")


if __name__ == "__main__":
    main()
