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
# Whether two run folders hold the same metrics: metrics.csv without its time columns
# (*_seconds) and test_metrics.json without train_seconds (absent in both is equal). Every row of
# a metrics.csv must have the header's number of fields. Prints the differences; status 1 if any.
run_metrics_same() {
    /usr/bin/python3 - "$1" "$2" <<'EOF'
import csv, json, os, sys
bad = []
def table(run):
    with open(os.path.join(run, "metrics.csv")) as f:
        r = list(csv.reader(f))
    if len({len(x) for x in r}) != 1:
        bad.append(f"{run}/metrics.csv: rows of {[len(x) for x in r]} fields")
    keep = [i for i, k in enumerate(r[0]) if not k.endswith("_seconds")]
    return [[x[i] if i < len(x) else "" for i in keep] for x in r]
def tests(run):
    p = os.path.join(run, "test_metrics.json")
    if not os.path.exists(p):
        return None
    t = json.load(open(p))
    t.pop("train_seconds", None)
    return t
a, b = sys.argv[1:3]
ta, tb = table(a), table(b)
if ta != tb:
    bad.append("metrics.csv differs:\n  " + "\n  ".join(",".join(x) for x in ta) +
               "\n against\n  " + "\n  ".join(",".join(x) for x in tb))
ja, jb = tests(a), tests(b)
if ja != jb:
    bad.append(f"test_metrics.json differs:\n  {ja}\n against\n  {jb}")
print("\n".join(bad))
sys.exit(1 if bad else 0)
EOF
}
# check_cmd RC PATTERN-IN-STDOUT PATTERN-IN-STDERR -- CMD...: one check that CMD (its stdout
# in ./out, its stderr in ./err) exits RC and that each pattern ('' = any) is in its stream. A
# failure names the command and shows the start of the stream at fault (without training's
# "epoch ..." lines).
check_cmd() {
    local rc=$1 po=$2 pe=$3; shift 4
    "$@" >out 2>err; local got=$?
    if [ $got -ne "$rc" ]; then bad "exit $got (want $rc): $*: $(grep -v '^epoch' err | head -4)"; return; fi
    [ -z "$po" ] || grep -q -- "$po" out || { bad "stdout lacks '$po': $*: $(head -4 out)"; return; }
    [ -z "$pe" ] || grep -q -- "$pe" err || { bad "stderr lacks '$pe': $*: $(grep -v '^epoch' err | head -4)"; return; }
    ok
}
# check_cmd_err RC PATTERN-IN-STDERR -- CMD...: check_cmd without a stdout pattern.
check_cmd_err() { local rc=$1 pe=$2; shift 3; check_cmd "$rc" "" "$pe" -- "$@"; }
