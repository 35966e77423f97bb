#!/usr/bin/env bash
# Help and errors behave alike in every command (issue 16, item 10): help goes to stdout with exit
# 0, `elm help CMD` is `elm CMD --help`, an unknown task is a usage error (exit 2) everywhere,
# `elm data info` reads the SHD folder `train --data` takes and says "No such file" for a missing
# path, the LSTM's banner names the LSTM, counts print as integers, plurals agree, and misspelt
# commands, flags and keys get a "did you mean".
set -u
. "$(dirname "$0")/../testlib.sh"
cli_test_in_tmp

# Help: stdout, exit 0, nothing on stderr.
for cmd in "gen --help" "gen" "data convert --help" "data --help" "help train" "help gen" \
    "help data convert" "help plot" "train --help" "eval --help" "plot --help"; do
    want=0; [ "$cmd" = "gen" ] && want=2
    # shellcheck disable=SC2086
    "$ELM" $cmd >out 2>err; rc=$?
    if [ $want -eq 0 ]; then
        { [ $rc -eq 0 ] && [ -s out ] && [ ! -s err ]; } && ok \
            || bad "elm $cmd: rc $rc, stdout $(wc -c <out) bytes, stderr: $(head -2 err)"
    else
        { [ $rc -eq 2 ] && [ -s err ]; } && ok || bad "elm $cmd: rc $rc (want 2, usage on stderr)"
    fi
done
check_cmd 0 "usage: elm train TASK" "" -- "$ELM" help train
check_cmd 0 "usage: elm gen KIND" "" -- "$ELM" help gen

# Unknown task: exit 2 in train, eval and sweep, with a suggestion.
check_cmd 2 "" "unknown task 'nueronio' (did you mean 'neuronio'?)" -- "$ELM" train nueronio --data x --out y
check_cmd 2 "" "unknown task 'nueronio' (did you mean 'neuronio'?)" -- "$ELM" eval nueronio --model x --data y
check_cmd 2 "" "unknown task 'shd-add'" -- "$ELM" sweep --task shd-add --data x --grid g --out o

# Suggestions for commands, kinds, flags and keys.
check_cmd 2 "" "unknown command 'trian' (did you mean 'train'?)" -- "$ELM" trian
check_cmd 2 "" "unknown generator 'pathfindr' (did you mean 'pathfinder'?)" -- "$ELM" gen pathfindr
check_cmd 2 "" "unknown verb 'infp' (did you mean 'info'?)" -- "$ELM" data infp x
check_cmd 2 "" "'--modl' (did you mean '--model'?)" -- "$ELM" plot neuronio --modl x
check_cmd 2 "" "'--epoch' (did you mean '--epochs'?)" -- "$ELM" train neuronio --data x --out y --epoch 3
check_cmd 1 "" "'num_memroy' (did you mean 'num_memory'?)" -- "$ELM" train neuronio --data x --out y --set num_memroy=3
check_cmd 1 "" "'batch_szie' (did you mean 'batch_size'?)" -- "$ELM" train shd --data x --out y --set batch_szie=3
check_cmd 2 "" "unknown argument '--modle' (did you mean '--model'?)" -- "$ELM" eval shd --modle x

# data info: an SHD folder (what train --data takes), a missing path, a folder missing a file.
mkdir shd shd1 shdgz
cp "$FIX/shd_tiny.h5" shd/shd_train.h5; cp "$FIX/shd_tiny.h5" shd/shd_test.h5
cp "$FIX/shd_tiny.h5" shd1/shd_train.h5
cp "$FIX/shd_tiny.h5" shdgz/shd_train.h5; gzip -c "$FIX/shd_tiny.h5" > shdgz/shd_test.h5.gz
check_cmd 0 "SHD file shd/shd_test.h5" "" -- "$ELM" data info shd
grep -c "^SHD file" out | grep -q '^2$' && ok || bad "folder: not both files: $(cat out)"
check_cmd 0 '"format":.*"shd-folder"' "" -- "$ELM" data info shd --json
/usr/bin/python3 -c '
import json, sys
d = json.load(open("out"))
assert d["train"]["samples"] == 10 and d["test"]["samples"] == 10, d
assert d["train"]["format"] == "shd" and d["path"] == "shd", d' && ok || bad "folder JSON: $(cat out)"
check_cmd 1 "SHD file shd1/shd_train.h5" "shd1/shd_test.h5: no such file" -- "$ELM" data info shd1
check_cmd 1 "" "shd_test.h5.gz: a gzip-compressed file" -- "$ELM" data info shdgz
check_cmd 1 "" "nothere: No such file or directory" -- "$ELM" data info nothere
check_cmd 1 "" "not a data set elm knows" -- "$ELM" data info "$T"

# The LSTM's banner, plurals, and counts printed as integers.
"$ELM" gen neuronio-teacher --sims 1 --seed 1 --out nio >/dev/null 2>&1 || bad "gen"
check_cmd 0 "" "training neuronio: LSTM (hidden size 8), .* parameters, 1 epoch x 1 batch of 2 x" -- \
    "$ELM" train neuronio --data nio --out lstm --epochs 1 --batches-per-epoch 1 --batch-size 2 \
    --set model_type=lstm --set lstm_hidden_size=8 --threads 1
check_cmd 0 "" "training neuronio: ELM v1, .* 2 epochs x 3 batches" -- \
    "$ELM" train neuronio --data nio --out elm --epochs 2 --batches-per-epoch 3 --batch-size 2 \
    --set num_memory=2 --threads 1
check_cmd 0 "^num_simulations  *1$" "" -- "$ELM" eval neuronio --model elm --data nio
grep -q "^soma_RMSE  *[0-9]*\.[0-9]\{6\}$" out && ok || bad "scores lost their decimals: $(cat out)"

echo "help_cli: $pass passed, $fail failed"
[ $fail -eq 0 ]
