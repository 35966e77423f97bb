#!/bin/bash
# gen_shd.sh - `elm gen shd` end to end: a tiny generation (2 speakers x 20 digits x 1 repeat)
# must give two files in SHD's exact layout that h5py reads (float16 times, uint16 units, uint8
# labels, extra/...), with disjoint speakers, and the same files again for the same seed.
# Skips (77) when espeak-ng, /usr/bin/python3 or its h5py is missing.
set -u
ELM=${ELM_CLI:-build/elm}
PY=/usr/bin/python3
command -v espeak-ng >/dev/null || { echo "SKIP: espeak-ng is not installed"; exit 77; }
[ -x "$PY" ] && "$PY" -c 'import h5py, numpy' 2>/dev/null ||
    { echo "SKIP: /usr/bin/python3 with h5py and numpy is not available"; exit 77; }
[ -x "$ELM" ] || { echo "FAIL: $ELM is not built"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }

# Usage errors exit 2; a missing espeak-ng program exits 1 and says what to install.
"$ELM" gen shd >/dev/null 2>&1; [ $? -eq 2 ] || bad "no --out: want exit 2"
"$ELM" gen shd --out "$tmp/x" --speakers 1 >/dev/null 2>&1; [ $? -eq 2 ] || bad "--speakers 1: want exit 2"
"$ELM" gen shd --out "$tmp/x" --bogus >/dev/null 2>&1; [ $? -eq 2 ] || bad "--bogus: want exit 2"
msg=$("$ELM" gen shd --out "$tmp/x" --speakers 2 --repeats 1 --espeak /nonexistent/espeak-ng 2>&1)
rc=$?
[ $rc -eq 1 ] || bad "missing espeak-ng: exit $rc, want 1"
echo "$msg" | grep -q "espeak-ng" || bad "missing espeak-ng: message does not name it: $msg"
[ -e "$tmp/x/shd_train.h5" ] && bad "a failed run left a file behind"

start=$(date +%s)
"$ELM" gen shd --out "$tmp/a" --speakers 2 --repeats 1 --seed 7 || bad "generation failed"
echo "tiny generation took $(( $(date +%s) - start )) s"

"$PY" - "$tmp/a" <<'EOF' || fail=1
import sys
import h5py
import numpy as np

d = sys.argv[1]
ok = True
def check(cond, what):
    global ok
    if not cond:
        print("FAIL:", what)
        ok = False

spk = {}
for split in ("train", "test"):
    with h5py.File(f"{d}/shd_{split}.h5", "r") as f:
        times, units, labels = f["spikes"]["times"], f["spikes"]["units"], f["labels"]
        n = len(labels)
        check(n == 20, f"{split}: {n} samples, want 20 (1 speaker x 20 digits x 1 repeat)")
        check(times.dtype.metadata["vlen"] == np.float16, f"{split}: times are not vlen float16")
        check(units.dtype.metadata["vlen"] == np.uint16, f"{split}: units are not vlen uint16")
        check(labels.dtype == np.uint8, f"{split}: labels dtype {labels.dtype}")
        check(sorted(labels[:].tolist()) == list(range(20)), f"{split}: labels {labels[:]}")
        counts = []
        for i in range(n):
            t, u = f["spikes"]["times"][i], f["spikes"]["units"][i]
            check(t.dtype == np.float16 and u.dtype == np.uint16, f"{split}[{i}]: element dtypes")
            check(len(t) == len(u), f"{split}[{i}]: {len(t)} times, {len(u)} units")
            check(np.all(np.diff(t.astype(np.float64)) >= 0), f"{split}[{i}]: times not sorted")
            check(len(u) == 0 or int(u.max()) < 700, f"{split}[{i}]: unit >= 700")
            check(len(t) == 0 or (t.min() >= 0 and t.max() < 1.5), f"{split}[{i}]: times range")
            counts.append(len(t))
        # SHD samples carry thousands of spikes; a silent or runaway cochlea would not.
        check(500 < np.mean(counts) < 30000, f"{split}: mean spikes {np.mean(counts)}")
        keys = [k.decode() for k in f["extra"]["keys"][:]]
        check(len(keys) == 20 and keys[0] == "zero" and keys[10] == "null", f"keys {keys}")
        spk[split] = set(f["extra"]["speaker"][:].tolist())
        meta = f["extra"]["meta_info"]
        g = [x.decode() for x in meta["gender"][:]]
        check(len(g) == 2 and set(g) <= {"female", "male"}, f"gender {g}")
        check(len(meta["age"]) == 2 and len(meta["body_height"]) == 2, "meta_info lengths")
check(len(spk["train"] & spk["test"]) == 0, f"speakers shared: {spk}")
sys.exit(0 if ok else 1)
EOF

# Same seed, same files (the cochlea is cut to 64 channels to keep this quick).
"$ELM" gen shd --out "$tmp/b" --speakers 2 --repeats 1 --seed 3 --channels 64 --quiet || bad "run b"
"$ELM" gen shd --out "$tmp/c" --speakers 2 --repeats 1 --seed 3 --channels 64 --quiet || bad "run c"
"$PY" - "$tmp/b" "$tmp/c" <<'EOF' || fail=1
import sys
import h5py
import numpy as np
for split in ("train", "test"):
    with h5py.File(f"{sys.argv[1]}/shd_{split}.h5") as a, h5py.File(f"{sys.argv[2]}/shd_{split}.h5") as b:
        same = np.array_equal(a["labels"][:], b["labels"][:]) and all(
            np.array_equal(x, y) for x, y in zip(a["spikes"]["times"][:], b["spikes"]["times"][:]))
        if not same:
            print(f"FAIL: {split}: the same seed gave different data")
            sys.exit(1)
EOF

[ $fail -eq 0 ] && echo "gen_shd: ok"
exit $fail
