# tests/testlib.sh - sourced by the shell tests in tests/cli: counting checks, and skips that are
# never silent passes.
#
# A test that cannot run at all exits 77 (CTest: skipped). A test that leaves out some of its
# checks calls skip_part and ends through finish, which then exits 77 instead of 0 (unless a
# check failed). With ELM_REQUIRE_SHARED=1 (set by .ci/run: CI always has ../shared) a missing
# shared reference folder is a failure, not a skip.
pass=0; fail=0; skipped_parts=0
ok() { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL: $*"; }
skip_part() { skipped_parts=$((skipped_parts+1)); echo "SKIP (part): $*"; }
# The whole test needs ../shared and it is absent: skip, or fail under ELM_REQUIRE_SHARED=1.
shared_missing() {
    if [ "${ELM_REQUIRE_SHARED:-0}" = 1 ]; then echo "FAIL: ELM_REQUIRE_SHARED=1 but $*"; exit 1; fi
    echo "SKIP: $*"; exit 77
}
# Part of the test needs ../shared and it is absent: a skipped part, or a failure.
shared_missing_part() {
    if [ "${ELM_REQUIRE_SHARED:-0}" = 1 ]; then bad "ELM_REQUIRE_SHARED=1 but $*"; else skip_part "$*"; fi
}
finish() {
    echo "$pass passed, $fail failed, $skipped_parts parts skipped"
    [ "$fail" -eq 0 ] || exit 1
    [ "$skipped_parts" -eq 0 ] || exit 77
    exit 0
}
# The preamble of tests that run in a private temporary folder: $ELM (ELM_CLI, default
# build/elm) as an absolute path, $FIX the fixtures of the source tree (ELM_SOURCE_DIR), $T the
# folder (removed on exit), and the working directory $T. Skips when the CLI is not built.
cli_test_in_tmp() {
    ELM=${ELM_CLI:-build/elm}
    local src=${ELM_SOURCE_DIR:-.}
    [ -x "$ELM" ] || { echo "SKIP: $ELM not built"; exit 77; }
    ELM=$(cd "$(dirname "$ELM")" && pwd)/$(basename "$ELM")
    FIX=$(cd "$src/tests/fixtures" && pwd)
    T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
    cd "$T" || exit 1
}
