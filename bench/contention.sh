#!/usr/bin/env bash
# Two medsynth processes on one machine: throughput of a pair against a process alone, for
# several OpenMP settings. Not run in CI. Check `uptime` first: the load should be below ~0.5.
#
#   bash bench/contention.sh [BINARY] [REPEATS]
#
# Each setting runs `medsynth bench dcgan --image-size 28 --channels 1` alone, then two at once,
# REPEATS times (default 3), and prints the medians of the per-step medians (ms) and the pair's
# combined throughput as a share of one process alone (2 x solo / pair; 100% = no loss).
# `MEDSYNTH_OPENMP_SET=1` keeps medsynth from choosing its own settings, so the row's are used.
# SETTINGS="name|VAR=value ...;name|..." replaces the default rows.
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-.build/release/medsynth}
REPEATS=${2:-3}
ARGS=(bench dcgan --image-size 28 --channels 1 --steps 30 --warmup 5 --peak 1 --json)
step() { env MEDSYNTH_OPENMP_SET=1 "$@" "$B" "${ARGS[@]}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["step_ms_median"])'; }
median() { python3 -c 'import statistics,sys; print(round(statistics.median(map(float, sys.argv[1:])), 1))' "$@"; }

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores; $B"
printf "%-44s %9s %9s %8s\n" "setting" "solo ms" "pair ms" "pair/solo"
SETTINGS=${SETTINGS:-"default (spin)|;OMP_WAIT_POLICY=passive|OMP_WAIT_POLICY=passive;GOMP_SPINCOUNT=10000|GOMP_SPINCOUNT=10000;passive, 1 thread|OMP_WAIT_POLICY=passive OMP_NUM_THREADS=1"}
IFS=';' read -r -a settings <<< "$SETTINGS"
for setting in "${settings[@]}"; do
  name=${setting%%|*}; vars=(${setting#*|})
  solo=(); pair=()
  for _ in $(seq "$REPEATS"); do
    solo+=("$(step "${vars[@]}")")
    a=$(mktemp); b=$(mktemp)
    step "${vars[@]}" > "$a" & step "${vars[@]}" > "$b"; wait
    pair+=("$(cat "$a")" "$(cat "$b")"); rm -f "$a" "$b"
  done
  s=$(median "${solo[@]}"); p=$(median "${pair[@]}")
  printf "%-44s %9s %9s %7.0f%%\n" "$name" "$s" "$p" "$(python3 -c "print(200 * $s / $p)")"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
