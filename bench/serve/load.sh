#!/usr/bin/env bash
# Load benchmark (not in CI): `medsynth serve` with the real classifier (the experiment's ResNet,
# `medsynth train` for one epoch) on loopback, POST /v1/models/breast/predict with a real PNG, wrk
# for $DURATION at concurrency 1, 8 and 32. Prints one JSON line per (server, concurrency).
# NOTE: peer_server.py (PyTorch) still implements the old stand-in tiny CNN, not the ResNet, so it
# is off by default until it reads classifier checkpoints (tracker #14, serving item);
# bench/serve/RESULTS.md holds the last tiny-CNN comparison.
#
#   bash bench/serve/load.sh    # env: MEDSYNTH=path/to/release/medsynth DURATION=30s SERVERS="medsynth:18080"
set -euo pipefail
cd "$(dirname "$0")/../.."
MEDSYNTH=${MEDSYNTH:-.build/release/medsynth}
DURATION=${DURATION:-30s}
DATA=${DATA:-../shared/data/breastmnist-png}
WORK=$(mktemp -d)
export MEDSYNTH_STORE="$WORK/store.sqlite"
export IMAGE=$(ls "$DATA"/malignant/*.png | head -1)
command -v wrk >/dev/null || { echo "load.sh: needs wrk (apt-get install wrk)" >&2; exit 1; }

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

run=$("$MEDSYNTH" train --data "$DATA" --arch resnet --epochs 1 --out "$WORK/model" 2>/dev/null | tail -1)
"$MEDSYNTH" models register "${run#MEDSYNTH_RUN_ID=}" --name breast >&2
"$MEDSYNTH" models alias breast 1 champion >&2
"$MEDSYNTH" serve --model breast@champion --port 18080 --max-concurrent 64 2>"$WORK/serve.log" & pids+=($!)
for port in 18080; do
    for _ in $(seq 100); do curl -sf -o /dev/null -X POST --data-binary @"$IMAGE" \
        "http://127.0.0.1:$port/v1/models/breast/predict" && break; sleep 0.2; done
done

for server in ${SERVERS:-medsynth:18080}; do
    for c in 1 8 32; do
        threads=$(( c < 2 ? c : 2 ))
        result=$(wrk -t"$threads" -c"$c" -d"$DURATION" -s bench/serve/post.lua \
            "http://127.0.0.1:${server#*:}/v1/models/breast/predict" | tail -1)
        echo "{\"server\": \"${server%%:*}\", \"concurrency\": $c, ${result#\{}"
    done
done
