#!/usr/bin/env bash
# `elm data info` on SHD files: the JSON summary of the tiny fixture, and clear errors for a
# broken one. Skips (77) when the CLI has not been built.
set -u
cli=${ELM_CLI:-}
src=${ELM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
if [ -z "$cli" ] || [ ! -x "$cli" ]; then
    echo "SKIP: \$ELM_CLI (the built elm) is not set or not executable: '${cli}'"
    exit 77
fi
fx=$src/tests/fixtures
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! "$cli" data info "$fx/shd_tiny.h5" --json >"$tmp/out.json" 2>"$tmp/err"; then
    echo "FAIL: elm data info --json exited non-zero:"; cat "$tmp/err"; fail=1
fi
# The numbers are make_tiny_shd.py's (10 samples, 220 spikes, 184 before 1 s).
if ! /usr/bin/python3 - "$tmp/out.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
want = {"format": "shd", "samples": 10, "classes": 10, "channels": 700, "spikes": 220,
        "spikes_in_window": 184, "max_channel": 699, "empty_samples": 1, "steps": 100,
        "duration_min_s": 0.25, "duration_max_s": 1.5, "speakers": 3}
bad = {k: (j.get(k), v) for k, v in want.items() if j.get(k) != v}
assert not bad, bad
assert len(j["keys"]) == 20 and j["keys"][17] == "sieben", j["keys"]
assert sum(j["label_counts"]) == 10, j["label_counts"]
PY
then
    echo "FAIL: JSON summary differs:"; cat "$tmp/out.json"; fail=1
fi

if ! "$cli" data info "$fx/shd_tiny.h5" >"$tmp/out.txt" 2>&1 || ! grep -q "samples *10" "$tmp/out.txt"; then
    echo "FAIL: text summary:"; cat "$tmp/out.txt"; fail=1
fi

"$cli" data info "$fx/shd_bad/unit900.h5" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -ne 1 ] || ! grep -q "unit900.h5: sample 2, spike 1: channel id 900" "$tmp/err"; then
    echo "FAIL: unit 900: exit $rc, stderr:"; cat "$tmp/err"; fail=1
fi

"$cli" data info "$fx/shd_tiny.h5" --no-such-flag >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -ne 2 ]; then
    echo "FAIL: unknown flag: exit $rc (want 2)"; cat "$tmp/err"; fail=1
fi

echo "not HDF5" >"$tmp/fake.h5"
"$cli" data info "$tmp/fake.h5" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -ne 1 ] || ! grep -q "fake.h5: not an HDF5 file" "$tmp/err"; then
    echo "FAIL: a text file named .h5: exit $rc, stderr:"; cat "$tmp/err"; fail=1
fi

exit $fail
