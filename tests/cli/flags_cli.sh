#!/usr/bin/env bash
# Flags that used to be parsed by hand go through the common parser (issue 12, item 5): `data
# convert neuronio` (SRC... and --out), `data info` of a Pathfinder folder (--size, --difficulty,
# --json, --check) and `plot curves` (RUN and repeated --metric) give the parser's errors (a
# missing value, a range, "did you mean"), accept --flag=value, and still print their --help.
set -u
ELM=${ELM_CLI:-build/elm}
SRC=${ELM_SOURCE_DIR:-.}
[ -x "$ELM" ] || { echo "SKIP: $ELM not built"; exit 77; }
ELM=$(cd "$(dirname "$ELM")" && pwd)/$(basename "$ELM")
source "$SRC/tests/testlib.sh"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
# run RC PATTERN-IN-STDOUT PATTERN-IN-STDERR -- CMD...: exit status and both patterns ('' = any)
run() {
    local rc=$1 po=$2 pe=$3; shift 4
    "$@" >out 2>err; local got=$?
    if [ $got -ne "$rc" ]; then bad "exit $got (want $rc): $*: $(head -3 err)"; return; fi
    [ -z "$po" ] || grep -q -- "$po" out || { bad "stdout lacks '$po': $*: $(head -3 out)"; return; }
    [ -z "$pe" ] || grep -q -- "$pe" err || { bad "stderr lacks '$pe': $*: $(head -3 err)"; return; }
    ok
}

run 0 "usage: elm data convert neuronio SRC... --out DIR" "" -- "$ELM" data convert neuronio --help
run 2 "" "--out needs a value" -- "$ELM" data convert neuronio x --out
run 2 "" "unknown argument '--outt' (did you mean '--out'?)" -- "$ELM" data convert neuronio x --outt d
run 2 "" "needs SRC... and --out DIR" -- "$ELM" data convert neuronio --out d
run 1 "" "nope.p" -- "$ELM" data convert neuronio nope.p --out=d

run 0 "usage: elm plot" "" -- "$ELM" plot curves --help
run 2 "" "plot curves: unexpected argument 'b'" -- "$ELM" plot curves a b --out f.png
run 2 "" "--metric needs a value" -- "$ELM" plot curves a --out f.png --metric
run 2 "" "unknown argument '--metrik' (did you mean '--metric'?)" -- "$ELM" plot curves a --metrik x
run 1 "" "a/metrics.csv" -- "$ELM" plot curves a --metric=AUC --metric soma_RMSE --out=f.png

"$ELM" gen pathfinder --n 4 --batch-size 2 --out pf >/dev/null 2>&1 &&
    "$ELM" gen pathfinder --n 4 --batch-size 2 --size 64 --out pf >/dev/null 2>&1 ||
    { echo "FAIL: gen pathfinder"; exit 1; }
run 0 "usage: elm data info DIR" "" -- "$ELM" data info pf --help
run 1 "" "pass --size and --difficulty" -- "$ELM" data info pf
run 0 "images       4 of 32x32 px" "" -- "$ELM" data info pf --size 32
run 0 '"image_size":	64' "" -- "$ELM" data info pf --json --size=64 --difficulty curv_contour_length_14
run 2 "" "--size needs an integer in \[0, 65536\]" -- "$ELM" data info pf --size x
run 2 "" "--size needs an integer in \[0, 65536\]" -- "$ELM" data info pf --size -3
run 2 "" "--difficulty needs a value" -- "$ELM" data info pf --size 32 --difficulty
run 2 "" "data info: unexpected argument 'extra'" -- "$ELM" data info pf --size 32 extra
run 2 "" "unknown argument '--chek' (did you mean '--check'?)" -- "$ELM" data info pf --chek
finish
