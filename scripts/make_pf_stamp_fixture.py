#!/usr/bin/python3
"""Writes tests/fixtures/pathfinder_stamps.txt: Pathfinder dash stamps drawn by Pillow.

The original generator (drewlinsley/pathfinder snakes.draw_line_n_mask) draws a dash as a line
of width round(2 * thickness) on a blown-up 'F' image with PIL.ImageDraw, converts it to 8-bit
and resizes it with Lanczos (scipy.misc.imresize -> PIL); the exclusion mask is the same line
dilated by a disk of radius 2 * margin, resized the same way. tests/pathfinder/test_pf_stamps.c
checks that elm's stamps are identical.

Format: one record per stamp: a line "size margin_index margin oy ox S", then S lines of line
values and S lines of mask values, each value two hex digits (0..255).
usage: /usr/bin/python3 scripts/make_pf_stamp_fixture.py [OUT]   (needs Pillow, numpy, scipy)
"""
import sys
import numpy as np
from PIL import Image, ImageDraw, __version__ as pil_version
from scipy import ndimage

AA = 2
# size: (paddle_length, thickness, margins), the LRA settings (src/pathfinder/pf_gen.c presets)
P = {32: (2, 0.5, [1]), 64: (5, 1.0, [1]), 128: (5, 1.5, [2, 3])}


def stamp(size, mi, oy, ox):
    L, t, ms = P[size]
    m = ms[mi]
    half = L + int(np.ceil(t)) + m
    sb, s, c = half * 2 * AA + 1, half * 2 + 1, half * AA
    im = Image.new('F', (sb, sb), 'black')
    ImageDraw.Draw(im).line([(c, c), (c + ox, c + oy)], fill='white', width=int(round(t * AA)))
    b = np.clip(np.array(im), 0, 255).astype(np.uint8)
    line = np.array(Image.fromarray(b, 'L').resize((s, s), resample=Image.LANCZOS))
    r = m * AA
    y, x = np.ogrid[-r:r + 1, -r:r + 1]
    dil = ndimage.grey_dilation(b, footprint=x * x + y * y <= r * r)
    mask = np.array(Image.fromarray(dil.astype(np.uint8), 'L').resize((s, s), resample=Image.LANCZOS))
    return m, s, line, mask


def ring(size, keep_every):
    L = P[size][0] * AA
    offs = [(oy, ox) for oy in range(-L - 1, L + 2) for ox in range(-L - 1, L + 2)
            if abs(np.hypot(oy, ox) - L) <= 1.0]
    return offs[::keep_every]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else 'tests/fixtures/pathfinder_stamps.txt'
    recs = []
    for size, every in ((32, 2), (64, 5), (128, 9)):
        for mi in range(len(P[size][2])):
            for oy, ox in ring(size, every):
                m, s, line, mask = stamp(size, mi, oy, ox)
                recs.append('%d %d %d %d %d %d\n' % (size, mi, m, oy, ox, s))
                for a in (line, mask):
                    recs += [''.join('%02x' % v for v in row) + '\n' for row in a]
    with open(out, 'w') as f:
        f.write('# Pathfinder dash stamps from Pillow %s; scripts/make_pf_stamp_fixture.py\n'
                % pil_version)
        f.writelines(recs)


if __name__ == '__main__':
    main()
