#!/usr/bin/python3
"""Writes the SHD test fixtures: tiny files in the exact layout of the released SHD files.

    /usr/bin/python3 tests/shd/make_tiny_shd.py [OUT_DIR]    (default: tests/fixtures)

shd_tiny.h5      10 samples, float16 ragged times, uint16 ragged units, uint8 labels,
                 extra/speaker, extra/keys, extra/meta_info/{gender,age,body_height}.
shd_tiny_f32.h5  the same spikes with float32 times, int32 units, int64 labels, no extra/.
shd_f64_edges.h5 float64 times on 10 ms bin edges (binned in float64).
shd_bad/*.h5     one defect each; elm_shd_load must refuse every one.

Samples 0..2 are hand-made edge cases whose binned counts (10 ms bins over [0, 1 s)) are written
out by hand below and checked here against numpy; tests/shd/test_shd.c holds the same numbers.
Samples 3..9 are random (fixed seed); for those the script prints each sample's kept-spike count
and a checksum that test_shd.c also holds. Run it again and the files come out the same.
"""
import os
import sys

import h5py
import numpy as np

F16 = np.float16

# Sample 0: bin edges. float16(0.01) is 0.0100021..., just above 10 ms, so it is in bin 1; the
# float16 just below it, 0.0099945..., stays in bin 0. 0.5 s is bin 50 exactly. 0.99951171875 s is
# the last float16 below 1 s (bin 99). Spikes at 1.0 s and 1.5 s are dropped.
S0_T = [0.0, 0.004, 0.0099945068359375, 0.01, 0.5, 0.5, 0.99951171875, 1.0, 1.5]
S0_U = [0, 699, 5, 5, 350, 350, 699, 1, 2]
S0_EXPECT = {(0, 0): 1, (0, 699): 1, (0, 5): 1, (1, 5): 1, (50, 350): 2, (99, 699): 1}
# Sample 1: no spike at all.
# Sample 2: times out of order; 0.125 s = 125 ms is bin 12.
S2_T = [0.25, 0.125, 0.25]
S2_U = [10, 20, 10]
S2_EXPECT = {(25, 10): 2, (12, 20): 1}

LABELS = [0, 19, 3, 10, 7, 12, 9, 15, 1, 18]
SPEAKERS = [0, 1, 0, 2, 1, 2, 0, 1, 2, 0]
KEYS = [b"zero", b"one", b"two", b"three", b"four", b"five", b"six", b"seven", b"eight",
        b"nine", b"null", b"eins", b"zwei", b"drei", b"vier", b"fuenf", b"sechs", b"sieben",
        b"acht", b"neun"]


def samples():
    rng = np.random.default_rng(20240229)
    times = [np.array(S0_T, F16), np.array([], F16), np.array(S2_T, F16)]
    units = [np.array(S0_U, np.uint16), np.array([], np.uint16), np.array(S2_U, np.uint16)]
    for _ in range(3, 10):
        n = int(rng.integers(1, 60))
        times.append(rng.uniform(0.0, 1.2, n).astype(F16))
        units.append(rng.integers(0, 700, n).astype(np.uint16))
    return times, units


def binned(t, u):
    """Counts per (bin, channel): bin = floor(t_ms / 10), t_ms = t * 1000, kept when < 1000."""
    out = {}
    for ti, ui in zip(t.astype(np.float64), u):
        ms = ti * 1000.0
        if ms >= 1000.0:
            continue
        key = (int(np.floor(ms / 10.0)), int(ui))
        out[key] = out.get(key, 0) + 1
    return out


def checksum(counts):
    """The test's checksum: sum over kept spikes of (bin * 700 + channel + 1)."""
    return sum((b * 700 + c + 1) * k for (b, c), k in counts.items())


def write(path, times, units, labels, tdtype=F16, udtype=np.uint16, ldtype=np.uint8,
          extra=True, skip=()):
    with h5py.File(path, "w", libver="earliest") as f:
        if "times" not in skip:
            d = f.create_dataset("spikes/times", (len(times),), dtype=h5py.vlen_dtype(tdtype))
            for i, t in enumerate(times):
                d[i] = np.asarray(t, tdtype)
        if "units" not in skip:
            d = f.create_dataset("spikes/units", (len(units),), dtype=h5py.vlen_dtype(udtype))
            for i, u in enumerate(units):
                d[i] = np.asarray(u, udtype)
        if "labels" not in skip:
            f.create_dataset("labels", data=np.asarray(labels, ldtype))
        if extra:
            f.create_dataset("extra/speaker", data=np.asarray(SPEAKERS[:len(labels)], np.uint8))
            f.create_dataset("extra/keys", data=np.array(KEYS))
            f.create_dataset("extra/meta_info/gender", data=np.array([b"female", b"male", b"male"]))
            f.create_dataset("extra/meta_info/age", data=np.array([29, 31, 24], np.uint8))
            f.create_dataset("extra/meta_info/body_height",
                             data=np.array([1.68, 1.82, 1.75], np.float64))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "fixtures")
    os.makedirs(os.path.join(out, "shd_bad"), exist_ok=True)
    times, units = samples()

    # The hand-written expectations must agree with numpy's binning of the float16 values.
    assert binned(times[0], units[0]) == S0_EXPECT, binned(times[0], units[0])
    assert binned(times[2], units[2]) == S2_EXPECT, binned(times[2], units[2])

    write(os.path.join(out, "shd_tiny.h5"), times, units, LABELS)
    write(os.path.join(out, "shd_tiny_f32.h5"), [t.astype(np.float32) for t in times],
          [u.astype(np.int32) for u in units], LABELS, np.float32, np.int32, np.int64,
          extra=False)

    bad = os.path.join(out, "shd_bad")
    t3, u3, l3 = times[:3], units[:3], LABELS[:3]
    write(os.path.join(bad, "no_labels.h5"), t3, u3, l3, extra=False, skip=("labels",))
    write(os.path.join(bad, "unit900.h5"), t3,
          [u3[0], u3[1], np.array([10, 900, 10], np.uint16)], l3, extra=False)
    write(os.path.join(bad, "length_mismatch.h5"), t3, u3, l3[:2], extra=False)
    write(os.path.join(bad, "row_mismatch.h5"), t3, [u3[0], u3[1], u3[2][:2]], l3, extra=False)
    write(os.path.join(bad, "nan_time.h5"),
          [t3[0], t3[1], np.array([0.25, np.nan, 0.25], F16)], u3, l3, extra=False)
    write(os.path.join(bad, "negative_time.h5"),
          [t3[0], t3[1], np.array([0.25, -0.125, 0.25], F16)], u3, l3, extra=False)
    write(os.path.join(bad, "label25.h5"), t3, u3, [0, 25, 3], extra=False)
    write(os.path.join(bad, "float_units.h5"), t3, u3, l3, udtype=np.float32, extra=False)
    # Values HDF5's conversion to int / float used to change before the message (D22): the
    # message must show the file's own value.
    write(os.path.join(bad, "unit_2p32_plus5.h5"), t3,
          [u3[0], u3[1], np.array([10, 2**32 + 5, 10], np.uint64)], l3, udtype=np.uint64,
          extra=False)
    write(os.path.join(bad, "time_minus_1e300.h5"),
          [t3[0], t3[1], np.array([0.25, -1e300, 0.25])], u3, l3, tdtype=np.float64, extra=False)
    write(os.path.join(bad, "label_2p32_plus5.h5"), t3, u3, [0, 2**32 + 5, 3],
          ldtype=np.int64, extra=False)

    # float64 times on 10 ms edges (D9): binned in float64, as the reference does. As float32,
    # 0.01 s is 0.00999999977 s (bin 0) and 0.03 s is 0.0299999993 s (bin 2); in float64 they
    # are bins 1 and 3. Sample 0: 0.01, 0.03, 0.07, 0.29 s on channel 1; sample 1: 0.5 s.
    write(os.path.join(out, "shd_f64_edges.h5"),
          [np.array([0.01, 0.03, 0.07, 0.29]), np.array([0.5])],
          [np.array([1, 1, 1, 1], np.uint16), np.array([2], np.uint16)], [4, 5],
          tdtype=np.float64, extra=False)

    total = sum(len(t) for t in times)
    kept = [sum(binned(t, u).values()) for t, u in zip(times, units)]
    sums = [checksum(binned(t, u)) for t, u in zip(times, units)]
    last = [float(np.max(t.astype(np.float64))) for t in times if len(t)]
    print("total_spikes", total)
    print("kept", ", ".join(map(str, kept)))
    print("checksum", ", ".join(map(str, sums)))
    print("max_channel", max(int(u.max()) for u in units if len(u)))
    print("last_min %.17g last_max %.17g" % (min(last), max(last)))


if __name__ == "__main__":
    main()
