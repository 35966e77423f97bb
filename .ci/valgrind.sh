#!/usr/bin/env bash
# .ci/valgrind.sh - runs a few fast test executables under valgrind memcheck; any invalid read or
# write, use of uninitialised memory, or definite/possible leak fails the run.
#
# Built normally (Release: -O2 -g, no sanitizers) in build-valgrind. The subset covers every
# parser with hostile input (test_malformed: safetensors, models, .npy, config; test_nio_cache;
# test_pf_errors; test_shd), the numerics against the reference (test_parity), and the LSTM
# baseline; the slow tests (training, generators, whole-file pickles) are left to the ASan build.
# One suppression (.ci/valgrind.supp): libgomp's worker threads' TLS, never freed by libgomp.
# Tests that need ../shared skip (exit 77) when it is absent, which is not a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${VALGRIND_BUILD:-build-valgrind}
TESTS=(test_malformed test_parity test_lstm test_nio_cache test_nio_metrics test_pf_errors
    test_pf_reader test_shd)
if ! command -v valgrind >/dev/null; then
    echo "valgrind: not installed (apt-get install valgrind)" >&2
    exit 1
fi
if ! cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Release ${ELM_WERROR:+-DELM_WERROR=$ELM_WERROR} \
    >/dev/null || ! cmake --build "$BUILD" -j2 --target "${TESTS[@]}" >/dev/null; then
    echo "valgrind: build failed" >&2
    exit 1
fi
export ELM_SHARED=${ELM_SHARED:-$(cd .. && pwd)/shared}
export ELM_SOURCE_DIR=$PWD ELM_CLI=$PWD/$BUILD/elm
# One OpenMP thread: valgrind serialises threads anyway, and this keeps the run short.
export OMP_NUM_THREADS=1
fail=0
mkdir -p "$BUILD/valgrind"
for t in "${TESTS[@]}"; do
    log=$BUILD/valgrind/$t.log
    start=$(date +%s)
    (cd "$BUILD" && valgrind -q --error-exitcode=101 --leak-check=full \
        --errors-for-leak-kinds=definite,possible --suppressions="$OLDPWD/.ci/valgrind.supp" \
        "./tests/$t") >"$log" 2>&1
    rc=$?
    secs=$(($(date +%s) - start))
    case $rc in
    0) echo "valgrind: $t ok (${secs} s)" ;;
    77) echo "valgrind: $t skipped (needs ../shared)" ;;
    101)
        echo "valgrind: $t: MEMORY ERRORS (see $log)"
        grep -m20 '^==' "$log"
        fail=1
        ;;
    *)
        echo "valgrind: $t: test failed with exit $rc (see $log)"
        tail -5 "$log"
        fail=1
        ;;
    esac
done
exit $fail
