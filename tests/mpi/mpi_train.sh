#!/usr/bin/env bash
# Data-parallel training over Open MPI (issue 18), on loopback with tiny runs:
# - `mpirun -np 2` and `-np 3` (an uneven split: 4 gradient groups as 2 + 1 + 1) train bitwise
#   the model of one process (cmp of model.safetensors and of the final checkpoint), for spike
#   lists (NeuronIO) and dense inputs (Pathfinder); so does one process with 1 and 2 threads;
#   the training losses and validation metrics (metrics.csv without its time columns) and
#   test_metrics.json are equal.
# - Stopped by --time-limit after each of batches 1 to 4 (2 ranks, then 3) and resumed on 3: the
#   model, the metrics.csv rows (a resumed epoch's train_loss averages all its batches) and the
#   NaN metric columns (the AUCs here) are those of the uninterrupted run.
# - A rank killed with SIGKILL ends the job (no hang: under `timeout`), mpirun names the rank and
#   the signal, the checkpoint left is complete, and resuming it with another number of ranks
#   ends with the uninterrupted run's model and metrics.
# - A rank that cannot read its data ends the job with a message naming the rank and the file.
# - Too few gradient groups for the ranks is refused with a message saying what to change.
set -u
ELM=${ELM_CLI:-build/elm}
MPIEXEC=${MPIEXEC:-mpirun}
[ -x "$ELM" ] || { echo "SKIP: $ELM not built"; exit 77; }
command -v "$MPIEXEC" >/dev/null || { echo "SKIP: $MPIEXEC not found"; exit 77; }
. "$(dirname "$0")/../testlib.sh"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
MPI=(timeout 120 "$MPIEXEC" --allow-run-as-root --oversubscribe)
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl_vader_single_copy_mechanism=none

$ELM gen neuronio-teacher --sims 2 --seed 5 --duration-ms 1200 --out "$T/nio" >/dev/null 2>&1 \
    || { echo "FAIL: teacher generation"; exit 1; }
$ELM gen pathfinder --n 40 --seed 5 --contour-length 6 --threads 1 --out "$T/pf" >/dev/null 2>&1 \
    || { echo "FAIL: pathfinder generation"; exit 1; }
NIO=(neuronio --data "$T/nio" --epochs 2 --batches-per-epoch 3 --batch-size 8 --lr 3e-3 --seed 9
     --set num_memory=3 --set checkpoint_every=2 --set eval_samples=16 --set grad_group=2)
PF=(pathfinder --data "$T/pf" --epochs 1 --batches-per-epoch 3 --batch-size 6 --seed 3
    --set num_memory=4 --set mlp_hidden_size=8 --set grad_group=1 --set eval_batch=5)

same_run() { # REF GOT WHAT
    cmp -s "$1/model.safetensors" "$2/model.safetensors" && ok || bad "$3: best model differs"
    local c; c=$(cd "$1/checkpoint" && ls step-*.model.safetensors)
    cmp -s "$1/checkpoint/$c" "$2/checkpoint/$c" && ok || bad "$3: final checkpoint $c differs"
    local d; d=$(run_metrics_same "$1" "$2") && ok || bad "$3: metrics differ: $d"
}

for task in NIO PF; do
    eval "ARGS=(\"\${$task[@]}\")"
    $ELM train "${ARGS[@]}" --threads 1 --out "$T/$task-1" 2>"$T/$task-1.log" && ok \
        || { bad "$task single process"; cat "$T/$task-1.log"; }
    $ELM train "${ARGS[@]}" --threads 2 --out "$T/$task-t2" 2>/dev/null && ok || bad "$task 2 threads"
    same_run "$T/$task-1" "$T/$task-t2" "$task 2 threads vs 1"
    for np in 2 3; do
        "${MPI[@]}" -np $np $ELM train "${ARGS[@]}" --threads 1 --out "$T/$task-np$np" \
            2>"$T/$task-np$np.log" && ok || { bad "$task -np $np"; tail "$T/$task-np$np.log"; }
        same_run "$T/$task-1" "$T/$task-np$np" "$task -np $np vs one process"
        grep -q "data-parallel over $np MPI ranks" "$T/$task-np$np.log" && ok || bad "$task -np $np banner"
        [ "$(grep -c '^elm: epoch' "$T/$task-np$np.log")" -eq "$(grep -c '^elm: epoch' "$T/$task-1.log")" ] \
            && ok || bad "$task -np $np: epoch lines not from rank 0 alone"
    done
done

# Stopped by --time-limit after every batch (--time-limit 1e-9: one batch per start) up to batch
# 4, inside epoch 2: batches 1-2 on 2 ranks, 3-4 on 3 ranks; then resumed on 3 to the end. The
# resumed epochs' train_loss average batches of several starts, and epoch 1's NaN AUCs come back
# from state.json as null: the uninterrupted run's model and metrics all the same.
for b in 1 2 3 4; do
    np=$(( b <= 2 ? 2 : 3 )) resume=$([ $b -gt 1 ] && echo --resume)
    "${MPI[@]}" -np $np $ELM train "${NIO[@]}" --threads 1 --out "$T/tl" $resume --time-limit 1e-9 \
        2>"$T/tl$b.log" && grep -q "stopped at batch $b of 6 (time limit)" "$T/tl$b.log" && ok \
        || { bad "-np $np $resume --time-limit to batch $b"; tail -3 "$T/tl$b.log"; }
done
# The allreduce statistics of one batch: the exponents, the sums and the stop flag (the batch
# timed for the budget is not counted).
grep -q "allreduce [0-9.]* ms and [0-9]* bytes per batch (3.0 calls, rank 0)" "$T/tl1.log" && ok \
    || bad "allreduce statistics of one batch: $(grep 'elm: MPI:' "$T/tl1.log")"
"${MPI[@]}" -np 3 $ELM train "${NIO[@]}" --threads 1 --out "$T/tl" --resume 2>"$T/tl5.log" && ok \
    || { bad "resume on -np 3"; tail -3 "$T/tl5.log"; }
same_run "$T/NIO-1" "$T/tl" "stopped after batches 1-4 on -np 2 and 3, resumed on -np 3"

# The default grad_group (min(8, ceil(8 / 2)) = 4: 2 groups) with -np 2, against one process.
D=("${NIO[@]:0:${#NIO[@]}-2}")
$ELM train "${D[@]}" --threads 2 --out "$T/d1" 2>/dev/null && ok || bad "default groups, one process"
"${MPI[@]}" -np 2 $ELM train "${D[@]}" --threads 1 --out "$T/d2" 2>/dev/null && ok || bad "default groups, -np 2"
same_run "$T/d1" "$T/d2" "default grad_group, -np 2"
# ... and -np 3 is refused: 2 groups for 3 ranks.
"${MPI[@]}" -np 3 $ELM train "${D[@]}" --threads 1 --out "$T/d3" 2>"$T/d3.log"; rc=$?
[ $rc -ne 0 ] && grep -q "is 2 groups for 3 ranks: every rank needs one; lower grad_group" "$T/d3.log" \
    && ok || { bad "too few groups (rc $rc)"; tail -5 "$T/d3.log"; }

# Rank 1 of 3 killed with SIGKILL after batch 3 (the checkpoint of batch 2 is written).
ELM_TEST_KILL_AT=1:3 "${MPI[@]}" -np 3 $ELM train "${NIO[@]}" --threads 1 --out "$T/k" 2>"$T/k.log"; rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && ok || bad "killed rank: rc $rc (124: the job hung)"
grep -q "rank 1 .*exited on signal 9" "$T/k.log" && ok || { bad "no message naming rank 1 and SIGKILL"; tail "$T/k.log"; }
[ "$(ls "$T/k/checkpoint")" = "$(printf 'state.json\nstep-2.model.safetensors\nstep-2.optim.safetensors')" ] \
    && ok || bad "checkpoint after the kill: $(ls "$T/k/checkpoint")"
# Resume with 2 ranks; then the run ends as the uninterrupted one.
"${MPI[@]}" -np 2 $ELM train "${NIO[@]}" --threads 1 --out "$T/k" --resume 2>"$T/kr.log" && ok \
    || { bad "resume -np 2"; tail "$T/kr.log"; }
grep -q "resuming .* at batch 2" "$T/kr.log" && ok || bad "resume did not start at batch 2"
same_run "$T/NIO-1" "$T/k" "killed at 3 of 6 on -np 3, resumed on -np 2"
# Killed again (rank 0 this time, the writer) and resumed by one process.
rm -rf "$T/k0"
ELM_TEST_KILL_AT=0:5 "${MPI[@]}" -np 2 $ELM train "${NIO[@]}" --threads 1 --out "$T/k0" 2>"$T/k0.log"; rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "rank 0 .*exited on signal 9" "$T/k0.log" && ok \
    || { bad "killed rank 0: rc $rc"; tail -4 "$T/k0.log"; }
$ELM train "${NIO[@]}" --threads 2 --out "$T/k0" --resume 2>"$T/k0r.log" && ok || bad "resume by one process"
# Checkpoints at batches 2, 3 (epoch end) and 5; the kill comes before the one of batch 5.
grep -q "resuming .* at batch 3" "$T/k0r.log" && ok || bad "resume did not start at batch 3: $(grep resum "$T/k0r.log")"
same_run "$T/NIO-1" "$T/k0" "killed at 5 of 6 on -np 2, resumed by one process"

# A rank that cannot read its data (MPMD: rank 1 is given a missing folder).
"${MPI[@]}" -np 1 $ELM train "${NIO[@]}" --out "$T/bad" : -np 1 $ELM train "${NIO[@]}" \
    --data "$T/missing" --out "$T/bad" 2>"$T/bad.log"; rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "rank 1 of 2: error: $T/missing" "$T/bad.log" && ok \
    || { bad "unreadable data on rank 1: rc $rc"; tail "$T/bad.log"; }
finish
