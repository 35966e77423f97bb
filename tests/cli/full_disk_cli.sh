#!/usr/bin/env bash
# A full disk during a checkpoint write and during `elm data convert` (issue 15; the first round
# handled it in code but never simulated it). Two ways to make writes fail:
#   - a file size limit (ulimit -f, RLIMIT_FSIZE) with SIGXFSZ ignored: write() gets EFBIG.
#     Works for any user.
#   - a real full disk: a small tmpfs filled up, write() gets ENOSPC. Needs root (mount); skipped
#     as a part otherwise.
# Each time: exit 1 with a message naming the file being written; no torn or temporary file; the
# previous checkpoint intact, and resuming later finishes with the model of an uninterrupted run,
# bit for bit; a failed convert leaves no cache behind.
set -u
ELM=${ELM_CLI:-build/elm}
SRC=${ELM_SOURCE_DIR:-.}
[ -x "$ELM" ] || { echo "SKIP: $ELM not built"; exit 77; }
. "$(dirname "$0")/../testlib.sh"
PICKLE=$SRC/tests/fuzz/corpus/nio_pickle/nio_p4 # 2 simulations of 20 ms, protocol 4
[ -f "$PICKLE" ] || { echo "SKIP: $PICKLE missing"; exit 77; }
T=$(mktemp -d)
MNT=$T/disk
cleanup() { mountpoint -q "$MNT" 2>/dev/null && umount "$MNT"; rm -rf "$T"; }
trap cleanup EXIT

"$ELM" gen neuronio-teacher --sims 2 --seed 5 --duration-ms 1200 --out "$T/data" >/dev/null 2>&1 \
    || { echo "FAIL: teacher generation"; exit 1; }
A=(neuronio --data "$T/data" --epochs 2 --batches-per-epoch 3 --batch-size 2 --threads 1
   --set num_memory=2 --set mlp_hidden_size=4 --set eval_samples=1 --lr 3e-3 --seed 9)
"$ELM" train "${A[@]}" --out "$T/ref" 2>"$T/err" && ok || { bad "reference run"; cat "$T/err"; }
# A checkpoint here is a 79 KB model and a 76 KB optimiser file.

# The checkpoint folder of RUN as "name md5" lines.
ck_sums() { (cd "$1/checkpoint" && md5sum -- * 2>/dev/null | sort); }

# full_checkpoint HOW RUN LIMIT-CMD...: RUN holds the checkpoint of batch 1; resuming it under
# LIMIT-CMD must fail at the next checkpoint with a message naming its file, and leave the
# checkpoint of batch 1 as it was; then, after make_room, resuming finishes the run.
full_checkpoint() {
    local how=$1 run=$2; shift 2
    ck_sums "$run" >"$T/ck.before"
    "$@" "$ELM" train "${A[@]}" --out "$run" --resume --set checkpoint_every=1 2>"$T/err"; local rc=$?
    [ $rc = 1 ] && ok || { bad "$how: checkpoint write: exit $rc (want 1): $(tail -2 "$T/err")"; return; }
    grep -q "^elm: error: $run/checkpoint/step-2\.model\.safetensors: write failed: $MSG (the previous checkpoint is intact)$" "$T/err" \
        && ok || bad "$how: the message does not name the checkpoint file: $(tail -2 "$T/err")"
    ls "$run/checkpoint" | grep -q '\.tmp\.' && bad "$how: a temporary file was left: $(ls "$run/checkpoint")" || ok
    # The checkpoint of batch 1 is as it was (files written completely by earlier steps of the
    # failed checkpoint would be removed by the next resume).
    ck_sums "$run" | grep -e state.json -e step-1 >"$T/ck.after"
    cmp -s "$T/ck.before" "$T/ck.after" && ok || bad "$how: the previous checkpoint changed"
    make_room
    "$ELM" train "${A[@]}" --out "$run" --resume 2>"$T/err" && ok || { bad "$how: resume after the full disk: $(tail -2 "$T/err")"; return; }
    grep -q "resuming .* at batch 1$" "$T/err" && ok || bad "$how: the resume did not start at batch 1"
    cmp -s "$T/ref/model.safetensors" "$run/model.safetensors" && ok \
        || bad "$how: the run resumed after the full disk differs from the uninterrupted one"
    [ "$(ls "$run/checkpoint")" = "$(printf 'state.json\nstep-6.model.safetensors\nstep-6.optim.safetensors')" ] \
        && ok || bad "$how: stale checkpoint files: $(ls "$run/checkpoint")"
}

# full_convert HOW OUT LIMIT-CMD...: elm data convert into OUT under LIMIT-CMD fails naming the
# cache file, and leaves no cache (nor temporary file) in OUT.
full_convert() {
    local how=$1 out=$2; shift 2
    cp "$PICKLE" "$T/a_sim__full.p"
    "$@" "$ELM" data convert neuronio "$T/a_sim__full.p" --out "$out" 2>"$T/err"; local rc=$?
    [ $rc = 1 ] && ok || { bad "$how: convert: exit $rc (want 1): $(tail -2 "$T/err")"; return; }
    grep -q "^elm: error: $out/a_sim__full\.nioc: write failed: $MSG" "$T/err" && ok \
        || bad "$how: convert: the message does not name the cache: $(tail -2 "$T/err")"
    [ -z "$(ls -A "$out" 2>/dev/null | grep -v '^$')" ] && ok \
        || bad "$how: convert left files behind: $(ls -A "$out")"
}

# ---- 1. A file size limit: EFBIG ----
MSG="File too large"
# limited KB CMD...: CMD with files limited to KB; its stderr goes through a pipe to ours, since
# the limit would also stop it from writing its message into a file.
limited() {
    local kb=$1; shift
    (trap '' XFSZ; ulimit -f "$kb"; exec "$@") 2>&1 >/dev/null | cat >&2
    return "${PIPESTATUS[0]}"
}
make_room() { :; } # the resume after the failure runs without the limit
"$ELM" train "${A[@]}" --out "$T/lim" --time-limit 1e-9 2>/dev/null # checkpoint of batch 1
full_checkpoint "ulimit -f 64" "$T/lim" limited 64
mkdir "$T/conv_lim"
full_convert "ulimit -f 0" "$T/conv_lim" limited 0

# ---- 2. A real full disk: a 1 MB tmpfs, filled up ----
MSG="No space left on device"
mkdir -p "$MNT"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=1m tmpfs "$MNT" 2>/dev/null; then
    "$ELM" train "${A[@]}" --out "$MNT/run" --time-limit 1e-9 2>/dev/null || bad "tmpfs: first batch"
    # Fill what is left but 40 KB: room for the run's small files, not for a 79 KB model.
    dd if=/dev/zero of="$MNT/filler" bs=4k 2>/dev/null
    truncate -s -40K "$MNT/filler"
    make_room() { rm -f "$MNT/filler"; }
    full_checkpoint "tmpfs" "$MNT/run" env
    rm -rf "$MNT/run"; mkdir "$MNT/conv"
    dd if=/dev/zero of="$MNT/filler2" bs=4k 2>/dev/null # full to the last block
    full_convert "tmpfs" "$MNT/conv" env
else
    skip_part "a real full disk needs root to mount a small tmpfs"
fi
finish
