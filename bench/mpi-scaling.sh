#!/usr/bin/env bash
# The experiment grid over MPI ranks: wall time of one small experiment with 1 and with 2 ranks,
# one OpenMP thread per rank, each into a fresh folder (nothing resumed).
#   bench/mpi-scaling.sh [MEDSYNTH] [DATA]
# Defaults: .build/release/medsynth, ../shared/data/breastmnist-png. Prints one line per run.
# NOTE: on a shared machine other work takes cores too; measure on an idle one to quote.
set -euo pipefail
cd "$(dirname "$0")/.."
exe=${1:-.build/release/medsynth}
data=${2:-../shared/data/breastmnist-png}
args=(experiment --data "$data" --arms original,oversample --seeds 2 --epochs 3 --no-audit --no-track)
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
work=$(mktemp -d /tmp/mpi-scaling.XXXXXX)
trap 'rm -rf "$work"' EXIT
for ranks in 1 2; do
    start=$(date +%s.%N)
    if [ "$ranks" = 1 ]; then
        "$exe" "${args[@]}" --out "$work/ranks-1" > "$work/ranks-1.log" 2>&1
    else
        mpirun --oversubscribe --bind-to none -np "$ranks" "$exe" "${args[@]}" --out "$work/ranks-$ranks" \
            > "$work/ranks-$ranks.log" 2>&1
    fi
    end=$(date +%s.%N)
    ranks_field=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1])).get('ranks'))" "$work/ranks-$ranks/report.json")
    printf "ranks %d: %.1f s wall (report.json ranks=%s)\n" "$ranks" "$(echo "$end - $start" | bc)" "$ranks_field"
done
uptime
