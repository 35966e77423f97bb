#!/usr/bin/env bash
# Where the time of one `elm bench` case goes: runs it under `perf record` (software cpu-clock
# samples, which work in VMs without hardware counters) and prints the share of samples by part
# of the kernels. Usage: scripts/profile.sh CONFIG MODE [BATCH] (e.g. neuronio-dm100 train 8).
set -eu
cfg=${1:?config}; mode=${2:?mode}; batch=${3:-}
ELM=${ELM:-build/elm}
command -v perf >/dev/null || { echo "perf is not installed (Debian: linux-perf)"; exit 1; }
data=$(mktemp); trap 'rm -f "$data"' EXIT
perf record -q -e cpu-clock -o "$data" "$ELM" bench --config "$cfg" --mode "$mode" \
    ${batch:+--batch "$batch"} --no-data --min-time 3 >/dev/null 2>&1
perf report -i "$data" --no-children --sort sym --stdio 2>/dev/null | awk -v label="$cfg $mode ${batch:-}" '
    /^ *[0-9.]+%/ {
        p = $1; sub("%", "", p); s = $0; sub(/^ *[0-9.]+% +\[[^]]*\] +/, "", s)
        if (s ~ /^(fma_avx512|fma_avx2|muladd_sse)/) next  # bench measuring the peak first
        total += p
        if (s ~ /^group_step_backward/) k = "backward step"
        else if (s ~ /^(group_step|step_)/) k = "forward step"
        else if (s ~ /^panel_flush/) k = "weight gradients (panels)"
        else if (s ~ /gather_nonzero|csr_|forward_sparse|fill_window/) k = "input scan / spike lists"
        else if (s ~ /memmove|memcpy|memset/) k = "memcpy/memset"
        else if (s ~ /optim|adam/) k = "optimiser"
        else k = "other"
        share[k] += p
    }
    END {
        printf "%s:", label
        n = split("forward step,backward step,weight gradients (panels),input scan / spike lists,memcpy/memset,optimiser,other", order, ",")
        for (i = 1; i <= n; i++) if (share[order[i]] > 0) printf "  %s %.0f%%", order[i], 100 * share[order[i]] / total
        printf "\n"
    }'
