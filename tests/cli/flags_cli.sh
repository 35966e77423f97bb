#!/usr/bin/env bash
# Flags that used to be parsed by hand go through the common parser (issue 12, item 5): `data
# convert neuronio` (SRC... and --out), `data info` of a Pathfinder folder (--size, --difficulty,
# --json, --check), of an SHD file or folder (--bin-ms, --duration-ms, --channels, --classes,
# --json) and of NeuronIO data (--json), `plot curves` (RUN and repeated --metric), `info`
# (--json), `convert` (--out, --f64), train's first pass (--config, --out, --resume) and the
# sweep's own flags give the parser's errors (a missing value, a range, "did you mean"), accept
# --flag=value and flags before PATH, and still print their --help. Each flag is also checked to
# do what it says, so a flag that stopped working fails here.
set -u
SRC=$(cd "${ELM_SOURCE_DIR:-.}" && pwd)
. "$(dirname "$0")/../testlib.sh"
cli_test_in_tmp

check_cmd 0 "usage: elm data convert neuronio SRC... --out DIR" "" -- "$ELM" data convert neuronio --help
check_cmd 2 "" "--out needs a value" -- "$ELM" data convert neuronio x --out
check_cmd 2 "" "unknown argument '--outt' (did you mean '--out'?)" -- "$ELM" data convert neuronio x --outt d
check_cmd 2 "" "needs SRC... and --out DIR" -- "$ELM" data convert neuronio --out d
check_cmd 1 "" "nope.p" -- "$ELM" data convert neuronio nope.p --out=d

check_cmd 0 "usage: elm plot" "" -- "$ELM" plot curves --help
# Several RUNs are one chain (plot curves RUN [RUN...]): the first missing one is named.
check_cmd 1 "" "a/metrics.csv" -- "$ELM" plot curves a b --out f.png
check_cmd 2 "" "plot curves: at most 16 runs" -- "$ELM" plot curves $(seq 1 17) --out f.png
check_cmd 2 "" "--metric needs a value" -- "$ELM" plot curves a --out f.png --metric
check_cmd 2 "" "unknown argument '--metrik' (did you mean '--metric'?)" -- "$ELM" plot curves a --metrik x
check_cmd 1 "" "a/metrics.csv" -- "$ELM" plot curves a --metric=AUC --metric soma_RMSE --out=f.png

"$ELM" gen pathfinder --n 4 --batch-size 2 --out pf >/dev/null 2>&1 &&
    "$ELM" gen pathfinder --n 4 --batch-size 2 --size 64 --out pf >/dev/null 2>&1 ||
    { echo "FAIL: gen pathfinder"; exit 1; }
check_cmd 0 "usage: elm data info DIR" "" -- "$ELM" data info pf --help
check_cmd 1 "" "pass --size and --difficulty" -- "$ELM" data info pf
check_cmd 0 "images       4 of 32x32 px" "" -- "$ELM" data info pf --size 32
check_cmd 0 '"image_size":	64' "" -- "$ELM" data info pf --json --size=64 --difficulty curv_contour_length_14
check_cmd 2 "" "--size needs an integer in \[0, 65536\]" -- "$ELM" data info pf --size x
check_cmd 2 "" "--size needs an integer in \[0, 65536\]" -- "$ELM" data info pf --size -3
check_cmd 2 "" "--difficulty needs a value" -- "$ELM" data info pf --size 32 --difficulty
check_cmd 2 "" "data info: unexpected argument 'extra'" -- "$ELM" data info pf --size 32 extra
check_cmd 2 "" "unknown argument '--chek' (did you mean '--check'?)" -- "$ELM" data info pf --chek

# data info on SHD: the binning flags change the binning, in either spelling and before PATH.
S=$FIX/shd_tiny.h5
check_cmd 0 "usage: elm data info FILE.h5|DIR" "" -- "$ELM" data info "$S" --help
check_cmd 0 "binned as    100 steps of 10 ms x 700 channels" "" -- "$ELM" data info "$S"
check_cmd 0 "binned as    50 steps of 20 ms" "" -- "$ELM" data info "$S" --bin-ms 20
check_cmd 0 "binned as    50 steps of 20 ms" "" -- "$ELM" data info --bin-ms=20 "$S"
check_cmd 0 "binned as    50 steps of 10 ms" "" -- "$ELM" data info "$S" --duration-ms 500
check_cmd 0 "x 800 channels" "" -- "$ELM" data info "$S" --channels=800
check_cmd 0 '"channels":	700' "" -- "$ELM" data info --json "$S" --classes 30
check_cmd 1 "" "shd_tiny.h5: sample 1 has label 19, outside 0..0" -- "$ELM" data info "$S" --classes=1
check_cmd 2 "" "--bin-ms needs a number" -- "$ELM" data info "$S" --bin-ms x
check_cmd 2 "" "--channels needs an integer" -- "$ELM" data info "$S" --channels
check_cmd 1 "" "shd_tiny.h5: 0 channels: need 1..65536" -- "$ELM" data info "$S" --channels 0
check_cmd 1 "" "shd_tiny.h5: bins of -1 ms" -- "$ELM" data info "$S" --bin-ms -1
check_cmd 2 "" "unknown argument '--bin-mss' (did you mean '--bin-ms'?)" -- "$ELM" data info "$S" --bin-mss 5
check_cmd 2 "" "data info: unexpected argument 'extra'" -- "$ELM" data info "$S" extra
echo "not HDF5" >fake.h5
check_cmd 2 "" "--bin-ms needs a number" -- "$ELM" data info fake.h5 --bin-ms x
check_cmd 1 "" "fake.h5: not an HDF5 file" -- "$ELM" data info fake.h5 --bin-ms 5

# data info on NeuronIO data (a 20 ms cache of the built-in teacher): --json, before or after PATH.
if "$ELM" gen neuronio-teacher --sims 1 --duration-ms 20 --threads 1 --out nio >/dev/null 2>&1; then
    check_cmd 0 "usage: elm data info PATH \[--json\]" "" -- "$ELM" data info nio --help
    check_cmd 0 '"format":	"neuronio-cache"' "" -- "$ELM" data info --json nio
    check_cmd 0 '"format":	"neuronio-cache"' "" -- "$ELM" data info nio --json
    check_cmd 2 "" "unknown argument '--jsn' (did you mean '--json'?)" -- "$ELM" data info nio --jsn
    check_cmd 2 "" "data info: unexpected argument 'extra'" -- "$ELM" data info nio extra
else
    bad "gen neuronio-teacher"
fi

# info and convert on the shipped SHD-Adding model.
M=$SRC/models/shd-adding
check_cmd 0 "usage: elm info MODEL" "" -- "$ELM" info --help
check_cmd 0 '"config":' "" -- "$ELM" info --json "$M"
check_cmd 2 "" "unknown argument '--jsn' (did you mean '--json'?)" -- "$ELM" info "$M" --jsn
check_cmd 2 "" "info: unexpected argument 'b'" -- "$ELM" info "$M" b
check_cmd 0 "usage: elm convert MODEL" "" -- "$ELM" convert --help
check_cmd 2 "" "--out needs a value" -- "$ELM" convert "$M" --out
check_cmd 2 "" "unknown argument '--f46' (did you mean '--f64'?)" -- "$ELM" convert "$M" --f46 --out m.safetensors
check_cmd 2 "" "convert: unexpected argument 'b'" -- "$ELM" convert "$M" b --out m.safetensors
check_cmd 2 "" "convert: --out FILE is required" -- "$ELM" convert "$M"
check_cmd 0 "" "" -- "$ELM" convert --out=m32.safetensors "$M"
check_cmd 0 "" "" -- "$ELM" convert "$M" --f64 --out m64.safetensors
# --f64 keeps float64 (twice the bytes of the float32 file).
n32=$(stat -c %s m32.safetensors 2>/dev/null || echo 0); n64=$(stat -c %s m64.safetensors 2>/dev/null || echo 0)
[ "$n32" -gt 0 ] && [ "$n64" -gt $((n32 * 3 / 2)) ] && ok || bad "convert --f64: $n64 bytes against $n32"

# train's first pass takes --config, --out and --resume in either spelling before the data is
# looked at (a bad key in the file named is the error); a flag without its value is refused.
echo '{"num_memroy": 3}' >typo.json
check_cmd 1 "" "typo.json: unknown option 'num_memroy'" -- "$ELM" train shd --data nodata --out r --config=typo.json
mkdir -p run && cp typo.json run/config.json
check_cmd 1 "" "run/config.json: unknown option 'num_memroy'" -- "$ELM" train shd --data nodata --out=run --resume
check_cmd 2 "" "--config needs a value" -- "$ELM" train shd --data nodata --out r --config
check_cmd 2 "" "unknown argument '--confg' (did you mean '--config'?)" -- "$ELM" train shd --confg typo.json
check_cmd 0 "usage: elm train" "" -- "$ELM" train shd --config typo.json --help

# The sweep's own flags are those of its table (--name=value too); the rest goes to train.
check_cmd 2 "" "--jobs needs an integer in \[1, 256\]" -- "$ELM" sweep --task shd --data d --grid g --out o --jobs=0
check_cmd 2 "" "sweep: --threads is set by the sweep itself" -- "$ELM" sweep --task shd --data d --grid g --out o --threads 2
finish
