#!/usr/bin/env bash
# Hostile load test (not in CI): `medsynth serve` with a real classifier (the ResNet, trained for
# one epoch on breastmnist-png) under normal clients beside slow and hostile ones for $SECONDS_LOAD
# seconds (bench/load_test.py attack: trickled headers, 4 and 10 MB bodies, idle connections),
# while a separate prober times /v2/health/live, /v2/health/ready and /metrics every 50 ms on the
# server's health port (`serve --health-port`), and a second one the same routes on the service port.
# Samples the server's resident memory before, during and after the load; prints one JSON
# report and exits non-zero if a health check on the health port took 100 ms or more, or one
# failed on either port, or resident memory rose more than its bound above its base
# (RSS_GROWTH_BOUND_MB, default 800: 16 admitted requests of at most an 8 MiB body and its decoded
# JSON each, and the ResNet's activations for a 256-image batch on each inference thread; the
# base, after the warm-up, holds the oneDNN primitives of every batch size: 220 MB without
# batching, about 480 with 32 sizes), or stayed more than 10% above its base after SETTLE.
#
#   bash bench/load-test.sh     # env: MEDSYNTH (default .build/release/medsynth), DATA, SECONDS_LOAD (60),
#                               #      SETTLE (30: seconds watched after the load), PORT (18090),
#                               #      HEALTH_PORT (PORT + 1), NORMAL (8), TRICKLERS (300), HUGE (4),
#                               #      IDLE (1000), SERVE_ARGS
set -euo pipefail
cd "$(dirname "$0")/.."
MEDSYNTH=${MEDSYNTH:-.build/release/medsynth}
DATA=${DATA:-../shared/data/breastmnist-png}
SECONDS_LOAD=${SECONDS_LOAD:-60}
SETTLE=${SETTLE:-30}
PORT=${PORT:-18090}
HEALTH_PORT=${HEALTH_PORT:-$((PORT + 1))}
WORK=$(mktemp -d)
export MEDSYNTH_STORE="$WORK/store.sqlite" OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
pngs=("$DATA"/malignant/*.png); PNG=${pngs[0]}
ulimit -n "$(ulimit -Hn)"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

echo "[load-test] training the classifier (resnet, 1 epoch)" >&2
run=$("$MEDSYNTH" train --data "$DATA" --arch resnet --epochs 1 --out "$WORK/model" 2>"$WORK/train.log" | tail -1)
run=${run#MEDSYNTH_RUN_ID=}
"$MEDSYNTH" models register "$run" --name breast >&2
"$MEDSYNTH" models alias breast 1 champion >&2

"$MEDSYNTH" serve --model breast@champion --port "$PORT" --health-port "$HEALTH_PORT" ${SERVE_ARGS:-} 2>"$WORK/serve.log" & server=$!
pids+=("$server")
for _ in $(seq 200); do
    curl -sf -o /dev/null "http://127.0.0.1:$PORT/v2/health/ready" && break
    sleep 0.1
done
curl -sf -o /dev/null "http://127.0.0.1:$PORT/v2/health/ready" || { cat "$WORK/serve.log" >&2; exit 1; }

rss() { awk '/^VmRSS/ {print $2 / 1024}' "/proc/$server/status"; }
# Warm up with each request shape the load sends (the first inference of a batch size builds and
# caches its oneDNN primitives), let the server trim its heap, then take the base figure.
python3 - "$PORT" "$PNG" <<'EOF'
import json, socket, sys
port, png = int(sys.argv[1]), open(sys.argv[2], "rb").read()
def post(path, body):
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % (path, len(body)) + body)
        while s.recv(65536): pass
batch = lambda n: json.dumps({"inputs": [{"name": "images", "shape": [n, 1, 28, 28], "datatype": "FP32",
                                          "data": [0.5] * (n * 784)}]}).encode()
for _ in range(3):
    post(b"/v1/models/breast/predict", png); post(b"/v2/models/breast/infer", batch(4)); post(b"/v2/models/breast/infer", batch(256))
# Every batch size the server's batching can form from the small requests (1 to
# --max-batch-images, 32 by default): each size builds and keeps its oneDNN primitives.
for n in range(1, 33):
    post(b"/v2/models/breast/infer", batch(n))
# The same shapes from 8 clients at once, so every inference thread has built its per-thread
# buffers (oneDNN scratchpads, sized by the largest batch) before the base is taken.
import threading
def shapes():
    post(b"/v1/models/breast/predict", png); post(b"/v2/models/breast/infer", batch(256)); post(b"/v2/models/breast/infer", batch(4))
clients = [threading.Thread(target=shapes) for _ in range(8)]
for c in clients: c.start()
for c in clients: c.join()
EOF
sleep 5
before=$(rss)

echo "[load-test] ${SECONDS_LOAD} s of load" >&2
python3 bench/load_test.py probe --port "$HEALTH_PORT" --seconds "$SECONDS_LOAD" --out "$WORK/probe.json" & probe=$!
python3 bench/load_test.py probe --port "$PORT" --seconds "$SECONDS_LOAD" --out "$WORK/probe-service.json" & service_probe=$!
python3 bench/load_test.py attack --port "$PORT" --seconds "$SECONDS_LOAD" --png "$PNG" --out "$WORK/attack.json" \
    --normal "${NORMAL:-8}" --tricklers "${TRICKLERS:-300}" --huge "${HUGE:-4}" --idle "${IDLE:-1000}" & attack=$!
pids+=("$probe" "$service_probe" "$attack")
peak=0; samples=()
while kill -0 "$attack" 2>/dev/null; do
    now=$(rss); samples+=("$now")
    peak=$(awk -v a="$peak" -v b="$now" 'BEGIN {print (b > a) ? b : a}')
    sleep 0.5
done
wait "$probe" "$service_probe" "$attack"
after_load=$(rss)
echo "[load-test] ${SETTLE} s after the load" >&2
settle_curve=()
for _ in $(seq $((SETTLE / 5))); do sleep 5; settle_curve+=("$(rss)"); done
sleep $((SETTLE % 5))
after=$(rss)
python3 bench/load_test.py probe --port "$HEALTH_PORT" --seconds 5 --out "$WORK/probe-after.json"

python3 - "$WORK" "$before" "$peak" "$after_load" "$after" "$SETTLE" "${settle_curve[*]}" <<'EOF'
import json, os, sys
work, before, peak, after_load, after, settle, curve = sys.argv[1:]
probe = json.load(open(f"{work}/probe.json"))
service = json.load(open(f"{work}/probe-service.json"))
report = {
    "machine": {"cpus": os.cpu_count(), "loadavg_at_end": open("/proc/loadavg").read().split()[:3]},
    "health_ms": probe["all_ms"], "health_by_path_ms": probe["by_path_ms"],
    "health_failures": probe["failure_count"], "health_failure_examples": probe["failures"],
    "health_over_50ms": probe["slow_over_50ms"],
    "service_port_health_ms": service["all_ms"], "service_port_failures": service["failure_count"],
    "service_port_over_50ms": service["slow_over_50ms"],
    "health_after_ms": json.load(open(f"{work}/probe-after.json"))["all_ms"],
    "rss_mb": {"before": float(before), "peak": float(peak), "end_of_load": float(after_load),
               f"after_{settle}s": float(after), "every_5s_after": [float(v) for v in curve.split()]},
    "load": json.load(open(f"{work}/attack.json")),
}
print(json.dumps(report, indent=1))
growth_bound = float(os.environ.get("RSS_GROWTH_BOUND_MB", "800"))
bound = float(before) + growth_bound
memory_ok = float(peak) <= bound and float(after) <= 1.1 * float(before)
ok = probe["failure_count"] == 0 and service["failure_count"] == 0 and probe["all_ms"].get("max", 1e9) < 100 and memory_ok
print(f"[load-test] health port max {probe['all_ms'].get('max', float('nan')):.1f} ms, "
      f"{probe['failure_count']} failed (service port max {service['all_ms'].get('max', float('nan')):.1f} ms, "
      f"{service['failure_count']} failed); RSS {float(before):.0f} MB before, peak {float(peak):.0f} (bound {bound:.0f}: base + {growth_bound:.0f}), "
      f"{float(after):.0f} after {settle} s: {'PASS' if ok else 'FAIL'}", file=sys.stderr)
sys.exit(0 if ok else 1)
EOF
