#!/usr/bin/env bash
# run.sh - runs each libFuzzer target for a while and fails on any crash, leak, sanitizer report,
# broken invariant (FUZZ_ASSERT), timeout or out-of-memory.
#
# Usage: tests/fuzz/run.sh [-t SECONDS] [-b BUILD_DIR] [TARGET...]
#   -t  seconds per target (default 30, or $FUZZ_SECONDS)
#   -b  where tests/fuzz/build.sh put the binaries (default build-fuzz/libfuzzer in the repository root)
#   TARGETs default to every fuzz_* binary in BUILD_DIR.
#
# Seeds come from tests/fuzz/corpus/<target>/ (never modified); new inputs go to
# BUILD_DIR/corpus/<target>/ and crashing inputs to BUILD_DIR/artifacts/<target>/, whose names
# libFuzzer prints (replay one with: BUILD_DIR/fuzz_<target> FILE). Logs: BUILD_DIR/logs/.
# Prints one line per target: executions, corpus size, coverage, result.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SECONDS_PER=${FUZZ_SECONDS:-30}
BUILD=$ROOT/build-fuzz/libfuzzer
while getopts "t:b:" o; do
    case $o in
    t) SECONDS_PER=$OPTARG ;;
    b) BUILD=$OPTARG ;;
    *) sed -n '2,14p' "$0"; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for f in "$BUILD"/fuzz_*; do
        [ -x "$f" ] && targets+=("$(basename "$f" | sed 's/^fuzz_//')")
    done
fi
[ ${#targets[@]} -gt 0 ] || { echo "run.sh: no fuzz targets in $BUILD (run build.sh)" >&2; exit 2; }

export OMP_NUM_THREADS=1
# Leaks are failures too; report UBSan findings with a stack.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fail=0
printf "%-14s %10s %8s %8s %s\n" target executions corpus cov result
for t in "${targets[@]}"; do
    bin=$BUILD/fuzz_$t
    [ -x "$bin" ] || { echo "run.sh: missing $bin" >&2; fail=1; continue; }
    work=$BUILD/corpus/$t
    arts=$BUILD/artifacts/$t
    mkdir -p "$work" "$arts" "$BUILD/logs"
    log=$BUILD/logs/$t.log
    seeds=()
    [ -d "$ROOT/tests/fuzz/corpus/$t" ] && seeds=("$ROOT/tests/fuzz/corpus/$t")
    # -timeout: one input running 10 s is a hang; -rss_limit_mb/-malloc_limit_mb: a file must
    # never make the parsers allocate far beyond its own size.
    "$bin" -max_total_time="$SECONDS_PER" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 -artifact_prefix="$arts/" "$work" "${seeds[@]}" >"$log" 2>&1
    rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | sed 's/cov: //')
    ncorp=$(find "$work" -type f | wc -l)
    if [ $rc -eq 0 ]; then
        res=ok
    else
        res="FAILED (rc $rc): see $log"
        fail=1
        grep -m3 -E 'ERROR|FUZZ_ASSERT|runtime error|Test unit written' "$log" | sed 's/^/    /'
    fi
    printf "%-14s %10s %8s %8s %s\n" "$t" "${execs:-?}" "$ncorp" "${cov:-?}" "$res"
done
exit $fail
