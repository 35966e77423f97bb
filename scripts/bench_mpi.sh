#!/usr/bin/env bash
# Data-parallel scaling on this machine (issue 18; docs/PERFORMANCE.md "Scaling over MPI ranks"):
# for each standard configuration of `elm bench` (neuronio-dm15, neuronio-dm100, shd,
# pathfinder), the training throughput of one process with 2 threads against 2 MPI ranks with
# 1 thread each, on generated data, and the time and bytes of the gradient allreduce per batch
# (rank 0's closing line). Run it on a quiet machine (it trains for a few minutes); it prints a
# markdown table and writes it to docs/results/mpi_scaling.md.
#
#   bash scripts/bench_mpi.sh [BATCHES]     # batches per measurement (default 40)
#
# Throughput is the trainer's own figure (sample-steps per second over the run, rank 0), so it
# includes the per-batch collectives and excludes evaluation. Both sides use the same gradient
# groups (grad_group=1), so they train the same model: the comparison is of speed alone.
set -euo pipefail
cd "$(dirname "$0")/.."
ELM=${ELM:-build/elm}
K=${1:-40}
[ -x "$ELM" ] || { echo "bench_mpi: build elm first (make)"; exit 1; }
command -v mpirun >/dev/null || { echo "bench_mpi: mpirun not found (scripts/setup.sh)"; exit 1; }
MPI=(mpirun --allow-run-as-root --oversubscribe)
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
export OMP_WAIT_POLICY=passive

echo "bench_mpi: generating data in $T" >&2
"$ELM" gen neuronio-teacher --sims 4 --seed 1 --duration-ms 6000 --out "$T/nio" >/dev/null 2>&1
"$ELM" gen pathfinder --n 400 --seed 1 --threads 2 --out "$T/pf" >/dev/null 2>&1
mkdir -p "$T/shd"
ln -s "$PWD/tests/fixtures/shd_tiny.h5" "$T/shd/shd_train.h5"
ln -s "$PWD/tests/fixtures/shd_tiny.h5" "$T/shd/shd_test.h5"

# name | task | data | batch size | model options (the configurations of cli/bench.c)
CONFIGS=(
  "neuronio-dm15|neuronio|$T/nio|8|--set num_memory=15"
  "neuronio-dm100|neuronio|$T/nio|8|--set num_memory=100 --set mlp_activation=silu"
  "shd|shd|$T/shd|32|--set num_memory=100 --set mlp_hidden_size=200 --set input_dropout=0"
  "pathfinder|pathfinder|$T/pf|16|--set num_memory=100 --set mlp_hidden_size=200"
)

rate() { # LOG: the last sample-steps/s figure of the progress lines
    grep -o '[0-9.]*[kM] sample-steps/s' "$1" | tail -1 |
        awk '{ v = $1; m = substr(v, length(v)); v = substr(v, 1, length(v) - 1);
               print (m == "M" ? v * 1e6 : v * 1e3) }'
}

out="| config | parameters | 1 rank x 2 threads (sample-steps/s) | 2 ranks x 1 thread | ratio | allreduce per batch (2 ranks) | bytes per batch |"
out+=$'\n'"|---|---|---|---|---|---|---|"
for c in "${CONFIGS[@]}"; do
    IFS='|' read -r name task data B opts <<<"$c"
    # shellcheck disable=SC2086
    ARGS=("$task" --data "$data" --epochs 1 --batches-per-epoch "$K" --batch-size "$B" --seed 1
          --set grad_group=1 --set eval_samples="$B" $opts)
    echo "bench_mpi: $name: 1 rank x 2 threads" >&2
    "$ELM" train "${ARGS[@]}" --threads 2 --out "$T/$name-1x2" 2>"$T/$name-1x2.log"
    echo "bench_mpi: $name: 2 ranks x 1 thread" >&2
    "${MPI[@]}" -np 2 "$ELM" train "${ARGS[@]}" --threads 1 --out "$T/$name-2x1" 2>"$T/$name-2x1.log"
    cmp -s "$T/$name-1x2/model.safetensors" "$T/$name-2x1/model.safetensors" ||
        echo "bench_mpi: warning: $name: the two models differ" >&2
    P=$(grep -o '[0-9]* parameters' "$T/$name-1x2.log" | head -1 | cut -d' ' -f1)
    r1=$(rate "$T/$name-1x2.log"); r2=$(rate "$T/$name-2x1.log")
    ar=$(grep -o 'allreduce [0-9.]* ms and [0-9]* bytes' "$T/$name-2x1.log" | awk '{print $2 " ms|" $5}')
    out+=$'\n'"| \`$name\` | $P | $r1 | $r2 | $(awk -v a="$r1" -v b="$r2" 'BEGIN { printf "%.2f", b / a }') | ${ar%%|*} | ${ar##*|} |"
done
echo "$out"
mkdir -p docs/results
{
    echo "# MPI scaling on this machine (scripts/bench_mpi.sh, $K batches, $(date -u +%Y-%m-%d))"
    echo
    echo "$(nproc) cores: $(lscpu | sed -n 's/^Model name: *//p')"
    echo
    echo "$out"
} >docs/results/mpi_scaling.md
echo "bench_mpi: written to docs/results/mpi_scaling.md" >&2
