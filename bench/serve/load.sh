#!/usr/bin/env bash
# Load benchmark (not in CI): `medsynth serve` and the PyTorch peer (peer_server.py) serving the
# same tiny 28 px CNN on loopback, POST /v1/models/breast/predict with a real PNG, wrk for
# $DURATION at concurrency 1, 8 and 32. Prints one JSON line per (server, concurrency).
#
#   bash bench/serve/load.sh    # env: MEDSYNTH=path/to/release/medsynth DURATION=30s PYTHON=... SERVERS="pytorch:18081"
set -euo pipefail
cd "$(dirname "$0")/../.."
MEDSYNTH=${MEDSYNTH:-.build/release/medsynth}
PYTHON=${PYTHON:-/work/main/.venv-bench/bin/python}
DURATION=${DURATION:-30s}
DATA=${DATA:-../shared/data/breastmnist-png}
WORK=$(mktemp -d)
export MEDSYNTH_STORE="$WORK/store.sqlite"
export IMAGE=$(ls "$DATA"/malignant/*.png | head -1)
command -v wrk >/dev/null || { echo "load.sh: needs wrk (apt-get install wrk)" >&2; exit 1; }

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

"$MEDSYNTH" models train-tiny --data "$DATA" --out "$WORK/model" --register breast --champion >&2
"$MEDSYNTH" serve --model breast@champion --port 18080 --max-concurrent 64 2>"$WORK/serve.log" & pids+=($!)
"$PYTHON" bench/serve/peer_server.py --weights "$WORK/model/model.safetensors" --port 18081 & pids+=($!)
for port in 18080 18081; do
    for _ in $(seq 100); do curl -sf -o /dev/null -X POST --data-binary @"$IMAGE" \
        "http://127.0.0.1:$port/v1/models/breast/predict" && break; sleep 0.2; done
done

for server in ${SERVERS:-medsynth:18080 pytorch:18081}; do
    for c in 1 8 32; do
        threads=$(( c < 2 ? c : 2 ))
        result=$(wrk -t"$threads" -c"$c" -d"$DURATION" -s bench/serve/post.lua \
            "http://127.0.0.1:${server#*:}/v1/models/breast/predict" | tail -1)
        echo "{\"server\": \"${server%%:*}\", \"concurrency\": $c, ${result#\{}"
    done
done
