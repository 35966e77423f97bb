#!/usr/bin/env bash
# .ci/fuzz.sh - builds every libFuzzer target (tests/fuzz/fuzz_*.c) with clang, ASan and UBSan,
# replays the inputs of past findings (tests/fuzz/findings/), and fuzzes each target for
# FUZZ_SECONDS (default 25) from its seed corpus, FUZZ_JOBS (default 2) at a time: about 2.5
# minutes for the ten fuzzed targets on two cores, plus the build (40 s here, one core).
# Exits non-zero on any crash, sanitizer report, broken invariant, hang or runaway allocation (per
# input: 2 s, 512 MB resident, 128 MB in one allocation; tests/fuzz/run.sh says why); the
# failing input is in build-ci-fuzz/artifacts/<target>/ (replay: build-ci-fuzz/fuzz_<target> FILE).
# Needs clang with libFuzzer (Debian: clang-14, libclang-rt-14-dev). See docs/RELIABILITY.md.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${FUZZ_BUILD:-build-ci-fuzz}
cc=${CC:-clang}
if ! command -v "$cc" >/dev/null 2>&1 || [[ "$("$cc" --version)" != *clang* ]]; then
    echo "fuzz: clang not found (apt-get install clang libclang-rt-dev); cannot fuzz" >&2
    exit 1
fi
export CC=${CC:-clang}
start=$(date +%s)
tests/fuzz/build.sh "$OUT"
echo "fuzz: built in $(($(date +%s) - start)) s"
# Every target is fuzzed except shd_raw: libhdf5 1.10 itself hangs or allocates gigabytes on some
# corrupt files (docs/RELIABILITY.md), which no change to elm can prevent. Its findings are
# replayed; SHD is fuzzed through fuzz_shd (valid HDF5 structure, hostile contents).
targets=()
for f in tests/fuzz/fuzz_*.c; do
    t=$(basename "$f" .c)
    t=${t#fuzz_}
    [ "$t" = shd_raw ] || targets+=("$t")
done
rc=0
tests/fuzz/run.sh -b "$OUT" -t "${FUZZ_SECONDS:-25}" -j "${FUZZ_JOBS:-2}" "${targets[@]}" || rc=1
tests/fuzz/run.sh -b "$OUT" -t 0 shd_raw || rc=1
if [ $rc -ne 0 ]; then
    echo "fuzz: FAILED (see above; docs/RELIABILITY.md explains replaying)" >&2
    exit 1
fi
echo "fuzz: all targets passed in $(($(date +%s) - start)) s"
