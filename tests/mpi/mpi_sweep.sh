#!/usr/bin/env bash
# `mpirun -np N elm sweep` (issue 18): the grid's points are dealt over the ranks, one point per
# rank at a time (point k of those to run goes to rank k mod N); rank 0 alone prints the plan,
# holds the folder and tabulates every rank's results; a point that fails is reported by rank 0
# and the job exits 1 without MPI_Abort; a folder another sweep holds is refused before any rank
# starts a point; each point runs as a plain single-process `elm train`
# (the launcher's variables kept out of its environment). Its models equal those of a local
# `elm sweep --jobs 1`.
set -u
ELM=${ELM_CLI:-build/elm}
MPIEXEC=${MPIEXEC:-mpirun}
src=${ELM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
[ -x "$ELM" ] || { echo "SKIP: $ELM not built"; exit 77; }
command -v "$MPIEXEC" >/dev/null || { echo "SKIP: $MPIEXEC not found"; exit 77; }
. "$src/tests/testlib.sh"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
MPI=(timeout 120 "$MPIEXEC" --allow-run-as-root --oversubscribe)
mkdir -p "$T/data"
ln -s "$src/tests/fixtures/shd_tiny.h5" "$T/data/shd_train.h5"
ln -s "$src/tests/fixtures/shd_tiny.h5" "$T/data/shd_test.h5"
cd "$T"
small=(--epochs 1 --batches-per-epoch 2 --threads-per-job 1 --no-plot)
cat >pts.json <<'EOF'
{"base": {"eval_samples": 4, "batch_size": 4},
 "points": [{"name": "a", "num_memory": 1}, {"name": "b", "num_memory": 2},
            {"name": "c", "num_memory": 3}]}
EOF
"${MPI[@]}" -np 2 "$ELM" sweep --task shd --data data --grid pts.json --out sw "${small[@]}" \
    >out.txt 2>err.txt && ok || { bad "mpirun -np 2 sweep: rc $?"; cat err.txt; }
grep -q "sweep over 2 MPI ranks" err.txt && ok || bad "no MPI line"
[ "$(grep -c 'elm: sweep pts.json: 3 points' err.txt)" = 1 ] && ok || bad "plan not printed once"
grep -q "3 of 3 points finished, 0 failed" err.txt && ok || bad "rank 0's summary: $(tail -2 err.txt)"
[ "$(tail -n +2 sw/results.csv | wc -l)" = 3 ] && ok || bad "results.csv rows: $(cat sw/results.csv)"
# Points a and c on rank 0, b on rank 1: each rank printed the start of its own points.
grep -q "\[1/3\] a: started" err.txt && grep -q "\[2/3\] c: started" err.txt && \
    grep -q "\[1/3\] b: started" err.txt && ok || bad "points not dealt a,c / b: $(grep started err.txt)"
for p in a b c; do
    grep -q "OMPI_\|MPI ranks" "sw/runs/$p/train.log" && bad "point $p ran as an MPI rank" || ok
done
# The same grid by a local sweep: the same models.
"$ELM" sweep --task shd --data data --grid pts.json --out loc "${small[@]}" --jobs 1 \
    >/dev/null 2>&1 && ok || bad "local sweep"
for p in a b c; do
    cmp -s "sw/runs/$p/model.safetensors" "loc/runs/$p/model.safetensors" && ok || bad "point $p model differs"
done

# A failing point (a window length SHD cannot take) on rank 1: reported by rank 0, exit 1.
cat >bad.json <<'EOF'
{"base": {"eval_samples": 4, "batch_size": 4},
 "points": [{"name": "ok", "num_memory": 1}, {"name": "typo", "seq_len": 7}]}
EOF
"${MPI[@]}" -np 2 "$ELM" sweep --task shd --data data --grid bad.json --out swb "${small[@]}" \
    >out.txt 2>err.txt; rc=$?
[ $rc = 1 ] && ok || bad "sweep with a failing point: rc $rc, want 1"
grep -q "1 of 2 points finished, 1 failed" err.txt && ok || bad "failure not tabulated: $(tail -3 err.txt)"
grep -q "MPI_ABORT" err.txt && bad "a failed point aborted the job" || ok

# A folder another sweep holds (its sweep.lock locked): refused by rank 0, and no rank starts a
# point there (rank 1 once trained point b into it before rank 0's MPI_Abort reached it).
mkdir -p held/runs
/usr/bin/python3 -c 'import fcntl, os, sys, time
f = open("held/sweep.lock", "a+"); fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
open("locked", "w").close(); time.sleep(60)' &
holder=$!
for _ in $(seq 50); do [ -e locked ] && break; sleep 0.1; done
"${MPI[@]}" -np 2 "$ELM" sweep --task shd --data data --grid pts.json --out held "${small[@]}" \
    >out.txt 2>err.txt; rc=$?
kill $holder 2>/dev/null; wait $holder 2>/dev/null
[ $rc = 1 ] && grep -q "held/sweep.lock: another elm sweep is running in this folder" err.txt \
    && ok || { bad "locked folder: rc $rc"; tail -3 err.txt; }
[ -z "$(ls held/runs)" ] && ok || bad "points started in a locked folder: $(ls held/runs)"
grep -q "MPI_ABORT" err.txt && bad "a locked folder aborted the job" || ok
finish
