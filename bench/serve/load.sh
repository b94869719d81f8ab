#!/usr/bin/env bash
# Load benchmark (not in CI): `medsynth serve` against a PyTorch peer (peer_server.py), both
# serving the same classifier checkpoint (the experiment's ResNet, `medsynth train --arch resnet`
# for one epoch) on loopback. wrk POSTs one real PNG to /v1/models/breast/predict for $DURATION
# at concurrency 1, 8 and 32, after $WARMUP at the same concurrency (oneDNN builds its primitives
# for each batch size on first use). Prints one JSON line per (server, concurrency), then one
# comparison line: medsynth's requests/s and p99 over the peer's at each concurrency.
# The peer's defaults, 1 intra-op thread and channels_last, were its best measured configuration
# (2 threads lost at every concurrency; bench/serve/RESULTS.md).
#
#   bash bench/serve/load.sh
#   env: MEDSYNTH=path/to/release/medsynth  PEER_PYTHON=python with torch (default .venv-bench)
#        DURATION=15s WARMUP=3s  SERVERS="medsynth peer"  PEER_THREADS=1  PEER_CHANNELS_LAST=1|0
#        SERVE_ARGS="more medsynth serve options"
set -euo pipefail
cd "$(dirname "$0")/../.."
MEDSYNTH=${MEDSYNTH:-.build/release/medsynth}
PEER_PYTHON=${PEER_PYTHON:-.venv-bench/bin/python}
DURATION=${DURATION:-15s}
WARMUP=${WARMUP:-3s}
SERVERS=${SERVERS:-medsynth peer}
DATA=${DATA:-../shared/data/breastmnist-png}
WORK=$(mktemp -d)
export MEDSYNTH_STORE="$WORK/store.sqlite"
export IMAGE=$(ls "$DATA"/malignant/*.png | head -1)
command -v wrk >/dev/null || { echo "load.sh: needs wrk (apt-get install wrk)" >&2; exit 1; }
declare -A port=([medsynth]=18080 [peer]=18081)

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

run=$("$MEDSYNTH" train --data "$DATA" --arch resnet --epochs 1 --out "$WORK/model" 2>/dev/null | tail -1)
CHECKPOINT=$WORK/model/model.safetensors
"$MEDSYNTH" models register "${run#MEDSYNTH_RUN_ID=}" --name breast >&2
"$MEDSYNTH" models alias breast 1 champion >&2
for server in $SERVERS; do
    case $server in
    medsynth)
        # shellcheck disable=SC2086  # SERVE_ARGS is a list of options
        "$MEDSYNTH" serve --model breast@champion --port "${port[medsynth]}" --max-concurrent 64 ${SERVE_ARGS:-} \
            2>"$WORK/serve.log" & pids+=($!) ;;
    peer)
        "$PEER_PYTHON" bench/serve/peer_server.py --weights "$CHECKPOINT" --port "${port[peer]}" \
            --threads "${PEER_THREADS:-1}" $([[ ${PEER_CHANNELS_LAST:-1} == 1 ]] && echo --channels-last) \
            2>"$WORK/peer.log" & pids+=($!) ;;
    *) echo "load.sh: unknown server $server (medsynth, peer)" >&2; exit 1 ;;
    esac
    for _ in $(seq 150); do curl -sf -o /dev/null -X POST --data-binary @"$IMAGE" \
        "http://127.0.0.1:${port[$server]}/v1/models/breast/predict" && break; sleep 0.2; done
done

lines=()
for server in $SERVERS; do
    url="http://127.0.0.1:${port[$server]}/v1/models/breast/predict"
    for c in 1 8 32; do
        threads=$(( c < 2 ? c : 2 ))
        wrk -t"$threads" -c"$c" -d"$WARMUP" -s bench/serve/post.lua "$url" >/dev/null
        result=$(wrk -t"$threads" -c"$c" -d"$DURATION" -s bench/serve/post.lua "$url" | tail -1)
        lines+=("{\"server\": \"$server\", \"concurrency\": $c, ${result#\{}")
        echo "${lines[-1]}"
    done
done

# medsynth over peer at each concurrency: requests/s (higher is better) and p99 (lower is better).
printf '%s\n' "${lines[@]}" | python3 -c '
import json, sys
rows = {(r["server"], r["concurrency"]): r for r in map(json.loads, sys.stdin)}
ratios = {f"c{c}": {"rps_ratio": round(rows["medsynth", c]["rps"] / rows["peer", c]["rps"], 2),
                    "p99_ratio": round(rows["medsynth", c]["p99_ms"] / rows["peer", c]["p99_ms"], 2)}
          for c in (1, 8, 32) if ("medsynth", c) in rows and ("peer", c) in rows}
if ratios:
    print(json.dumps({"comparison": "medsynth / peer", **ratios}))
'
