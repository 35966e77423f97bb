#!/usr/bin/env bash
# run.sh - runs each libFuzzer target for a while and fails on any crash, leak, sanitizer report,
# broken invariant (FUZZ_ASSERT), timeout or out-of-memory.
#
# Usage: tests/fuzz/run.sh [-t SECONDS] [-j JOBS] [-b BUILD_DIR] [TARGET...]
#   -t  seconds per target (default 30, or $FUZZ_SECONDS); 0 replays the findings only
#   -j  targets fuzzed at the same time, one core each (default 1, or $FUZZ_JOBS)
#   -b  where build.sh put the binaries (default build-fuzz/libfuzzer in the repository root)
#   TARGETs default to every fuzz_* binary in BUILD_DIR.
#
# The inputs of earlier findings (tests/fuzz/findings/<target>/, see docs/RELIABILITY.md) are
# replayed first and must all run clean. Seeds come from tests/fuzz/corpus/<target>/ (never
# modified); new inputs go to BUILD_DIR/corpus/<target>/ and crashing inputs to
# BUILD_DIR/artifacts/<target>/ (replay one with: BUILD_DIR/fuzz_<target> FILE).
# Logs: BUILD_DIR/logs/.
# Prints one line per target: executions, corpus size, coverage, result.
#
# Limits per input (environment): FUZZ_TIMEOUT seconds (default 2), FUZZ_RSS_MB resident
# (default 512), FUZZ_MALLOC_MB in one allocation (default 128). They are tight on purpose: a
# valid input of at most 64 KB parses in milliseconds and well under 120 MB resident (ASan
# included), so anything near them is a blow-up a hostile file could make bigger. The loose limits
# of the first round (10 s, 2 GB, 1 GB) let a 48 KB pickle take 1.2 GB unnoticed (D2, issue 15).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SECONDS_PER=${FUZZ_SECONDS:-30}
JOBS=${FUZZ_JOBS:-1}
BUILD=$ROOT/build-fuzz/libfuzzer
while getopts "t:j:b:" o; do
    case $o in
    t) SECONDS_PER=$OPTARG ;;
    j) JOBS=$OPTARG ;;
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
TIMEOUT=${FUZZ_TIMEOUT:-2}
RSS_MB=${FUZZ_RSS_MB:-512}
MALLOC_MB=${FUZZ_MALLOC_MB:-128}
# Leaks are failures too; report UBSan findings with a stack. ASan's quarantine of freed memory
# (256 MB by default) would count against the resident limit: 64 MB keeps use-after-free checks.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:quarantine_size_mb=64}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# Leaks that belong to a system library alone (see the file for each, and why) are not elm's.
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/tests/fuzz/lsan.supp:print_suppressions=0}
# One target: fuzz, then write its summary line to BUILD/logs/<target>.result; rc 1 on failure.
fuzz_one() {
    local t=$1 bin=$BUILD/fuzz_$1
    local work=$BUILD/corpus/$t arts=$BUILD/artifacts/$t log=$BUILD/logs/$t.log
    local res=$BUILD/logs/$t.result
    mkdir -p "$work" "$arts" "$BUILD/logs"
    if [ ! -x "$bin" ]; then
        printf "%-14s %10s %8s %8s %8s %s\n" "$t" - - - - "MISSING $bin" >"$res"
        return 1
    fi
    # HDF5 has no frame pointers: unwind malloc stacks fully for fuzz_shd_raw so the LSan
    # suppressions (lsan.supp) match exact paths, not just "somewhere in libhdf5".
    local asan=$ASAN_OPTIONS
    [ "$t" = shd_raw ] && asan=$asan:fast_unwind_on_malloc=0:malloc_context_size=40
    rm -f "$log.findings"
    # Replay the inputs of earlier findings (tests/fuzz/findings/<target>/) first: each must now
    # run clean. A finding that still fails is reported and fails the run, and fuzzing goes on.
    local regress=()
    local f
    for f in "$ROOT/tests/fuzz/findings/$t"/*; do
        [ -f "$f" ] || continue
        if ! ASAN_OPTIONS=$asan "$bin" -timeout="$TIMEOUT" -rss_limit_mb="$RSS_MB" \
            -malloc_limit_mb="$MALLOC_MB" "$f" \
            >"$log.replay" 2>&1; then
            regress+=("$(basename "$f")")
            cat "$log.replay" >>"$log.findings"
        fi
    done
    local seeds=()
    [ -d "$ROOT/tests/fuzz/corpus/$t" ] && seeds=("$ROOT/tests/fuzz/corpus/$t")
    # The limits (see the top): an input of at most 64 KB must never make a parser work seconds
    # or allocate much because it says so.
    # While fuzzing raw SHD bytes, allocations above 1 GiB fail (return NULL) instead of stopping
    # the run, under the first round's loose limits: libhdf5 allocates whatever a corrupt
    # variable-length entry claims (docs/RELIABILITY.md), and with this it must fail cleanly.
    # Its findings are replayed under the tight limits like every other target's.
    local fasan=$asan ftime=$TIMEOUT frss=$RSS_MB fmalloc=$MALLOC_MB
    if [ "$t" = shd_raw ]; then
        fasan=$asan:allocator_may_return_null=1:max_allocation_size_mb=1024
        ftime=10 frss=2048 fmalloc=1024
    fi
    local rc=0
    if [ "$SECONDS_PER" -gt 0 ]; then
        ASAN_OPTIONS=$fasan "$bin" -max_total_time="$SECONDS_PER" -timeout="$ftime" \
            -rss_limit_mb="$frss" -malloc_limit_mb="$fmalloc" -max_len=65536 \
            -print_final_stats=1 -artifact_prefix="$arts/" \
            "$work" "${seeds[@]}" >"$log" 2>&1
        rc=$?
    else
        echo "findings replayed only (-t 0)" >"$log"
    fi
    local execs cov ncorp r peak
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    peak=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | sed 's/cov: //')
    ncorp=$(find "$work" -type f | wc -l)
    if [ $rc -eq 0 ]; then r=ok; else r="FAILED (rc $rc): see $log"; fi
    [ ${#regress[@]} -eq 0 ] || r="$r; STILL FAILING findings: ${regress[*]} (see $log.findings)"
    {
        printf "%-14s %10s %8s %8s %8s %s\n" "$t" "${execs:-?}" "$ncorp" "${cov:-?}" "${peak:-?}" "$r"
        [ $rc -eq 0 ] ||
            grep -m4 -E 'ERROR|FUZZ_ASSERT|runtime error|Test unit written' "$log" | sed 's/^/    /'
    } >"$res"
    [ $rc -eq 0 ] && [ ${#regress[@]} -eq 0 ]
}

fail=0
running=0
for t in "${targets[@]}"; do
    rm -f "$BUILD/logs/$t.result"
    fuzz_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then
        wait -n || fail=1
        running=$((running - 1))
    fi
done
while [ "$running" -gt 0 ]; do
    wait -n || fail=1
    running=$((running - 1))
done
printf "%-14s %10s %8s %8s %8s %s\n" target executions corpus cov peak_MB result
for t in "${targets[@]}"; do
    cat "$BUILD/logs/$t.result" 2>/dev/null || { echo "$t: no result"; fail=1; }
done
exit $fail
