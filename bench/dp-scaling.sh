#!/usr/bin/env bash
# Data-parallel training over MPI ranks: training steps per second of `train` (ResNet) and
# `gan train` (DCGAN) with 1 and with 2 ranks, one OpenMP thread per rank, the same global batch.
# The runs alternate (1, 2, 1, 2, ...) so that both see the same machine; prints every run, the
# medians, and the load average before and after.
#   bench/dp-scaling.sh [MEDSYNTH] [DATA] [REPEATS]
# Defaults: .build/release/medsynth, ../shared/data/breastmnist-png, 3; EPOCHS (3), GAN_STEPS
# (40) and BATCH (64) in the environment change the runs' length.
# train: EPOCHS epochs of batches of BATCH (9 steps an epoch on breast's 546 training images at
# 64); steps/s from history.json over every epoch but the first (which warms up; each epoch's time
# includes scoring the validation images). gan train (the malignant class): GAN_STEPS steps of
# batches of BATCH; steps/s from the last progress line (img/s over the last 20 steps / BATCH).
# NOTE: on a shared machine other work takes cores too; measure on an idle one to quote.
set -euo pipefail
cd "$(dirname "$0")/.."
exe=${1:-.build/release/medsynth}
data=${2:-../shared/data/breastmnist-png}
repeats=${3:-3}
epochs=${EPOCHS:-3} steps=${GAN_STEPS:-40} batch=${BATCH:-64}
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
work=$(mktemp -d /tmp/dp-scaling.XXXXXX)
trap 'rm -rf "$work"' EXIT
launch() {  # ranks, then the command's arguments
    local ranks=$1; shift
    if [ "$ranks" = 1 ]; then "$exe" "$@"; else mpirun --oversubscribe --bind-to none -np "$ranks" "$exe" "$@"; fi
}
echo "load before: $(cat /proc/loadavg)"
for i in $(seq "$repeats"); do
    for ranks in 1 2; do
        out="$work/train-$ranks-$i"
        launch "$ranks" train --data "$data" --arch resnet --epochs "$epochs" --patience "$epochs" \
            --batch-size "$batch" --seed 0 --no-track --out "$out" > "$out.log" 2>&1
        python3 - "$out" "$ranks" "$batch" <<'PY' | tee -a "$work/train-$ranks.txt"
import json, sys
out, ranks, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
n = sum(json.loads(line)["split"] == "train" for line in open(f"{out}/manifest.jsonl"))
per_epoch = n // batch + (1 if n % batch >= 2 * ranks else 0)  # a last batch of fewer than 2 per rank is dropped
epochs = json.load(open(f"{out}/history.json"))["epochs"][1:]
steps, seconds = per_epoch * len(epochs), sum(e["seconds"] for e in epochs)
print(f"train resnet ranks {ranks}: {steps / seconds:.3f} steps/s ({steps} steps in {seconds:.1f} s)")
PY
        out="$work/gan-$ranks-$i"
        launch "$ranks" gan train --data "$data" --class malignant --max-steps "$steps" --batch-size "$batch" \
            --seed 0 --no-track --out "$out" > "$out.log" 2>&1
        python3 - "$out.log" "$ranks" "$batch" <<'PY' | tee -a "$work/gan-$ranks.txt"
import re, sys
rates = re.findall(r"([0-9.]+) img/s", open(sys.argv[1]).read())
print(f"gan train dcgan ranks {sys.argv[2]}: {float(rates[-1]) / int(sys.argv[3]):.3f} steps/s (the last 20 steps)")
PY
    done
done
for kind in train gan; do
    for ranks in 1 2; do
        sort -t: -k2 -g <(sed 's/.*: \([0-9.]*\) steps.*/x: \1/' "$work/$kind-$ranks.txt") \
            | awk -v k="$kind" -v r="$ranks" '{v[NR]=$2} END {printf "median %s ranks %s: %.3f steps/s\n", k, r, v[int((NR+1)/2)]}'
    done
done
echo "load after: $(cat /proc/loadavg)"
