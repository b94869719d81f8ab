#!/usr/bin/env bash
# Runs the MedSynth DCGAN benchmark and the PyTorch / TensorFlow peers on this
# machine, one after another, saves the raw JSON lines to
# bench/results/latest.jsonl and prints a Markdown comparison table.
#
# Usage: bash bench/compare.sh [--no-build] [--peers-only] [--steps N] [--warmup N] [--threads N]
#   --no-build    never run `swift build`, even if .build/release/medsynth is missing
#   --peers-only  skip MedSynth entirely
# Env: PEAK_GFLOPS for the "% of peak" column (default: `medsynth bench peak`, the widest FMA
#      the CPU has on every core, AVX-512 where present);
#      MEDSYNTH_BIN (default .build/release/medsynth) to benchmark another binary.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="$ROOT/.venv-bench/bin/python"
BIN="${MEDSYNTH_BIN:-$ROOT/.build/release/medsynth}"
RESULTS="$ROOT/bench/results"
OUT="$RESULTS/latest.jsonl"

BUILD=1; MEDSYNTH=1; STEPS=10; WARMUP=3; THREADS=2
while [[ $# -gt 0 ]]; do
    case "$1" in
        --no-build) BUILD=0 ;;
        --peers-only) MEDSYNTH=0 ;;
        --steps) STEPS="$2"; shift ;;
        --warmup) WARMUP="$2"; shift ;;
        --threads) THREADS="$2"; shift ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

bash "$ROOT/bench/setup_peers.sh" || { echo "[compare] setup_peers.sh failed" >&2; exit 1; }
mkdir -p "$RESULTS"
: > "$OUT"
{   # machine and versions, next to the raw results
    date -u +%FT%TZ; uptime; lscpu | head -20
    "$PY" -c 'import torch; print("torch", torch.__version__)'
    TF_CPP_MIN_LOG_LEVEL=3 "$PY" -c 'import tensorflow as tf; print("tensorflow", tf.__version__)' 2>/dev/null
} > "$RESULTS/latest-env.txt" 2>&1

note() { echo "[compare] $*" >&2; }

# Keep only the last line of stdout that looks like a JSON object.
last_json() { grep -E '^[[:space:]]*\{' | tail -n 1; }

run_json() {  # run_json LABEL CMD...  -> appends one JSON line to $OUT
    local label="$1"; shift
    note "running $label: $*"
    local line
    line="$("$@" | last_json)"
    local rc=$?   # pipefail: non-zero if the command failed or printed no JSON line
    if [[ $rc -ne 0 || -z "$line" ]]; then
        note "$label failed (rc=$rc) or printed no JSON line; skipped"
        return 1
    fi
    echo "$line" >> "$OUT"
}

# ---- MedSynth ---------------------------------------------------------------
if [[ $MEDSYNTH -eq 1 ]]; then
    if [[ ! -x "$BIN" && $BUILD -eq 1 ]]; then
        if command -v swift >/dev/null 2>&1; then
            note "$BIN missing; building with 'swift build -c release'"
            swift build -c release >&2 || note "swift build failed"
        else
            note "swift not found; cannot build MedSynth"
        fi
    fi
    if [[ -x "$BIN" ]]; then
        if [[ -z "${PEAK_GFLOPS:-}" ]]; then
            peak_json="$("$BIN" bench peak --json | last_json)"
            note "peak: $peak_json"
            echo "$peak_json" >> "$RESULTS/latest-env.txt"
            PEAK_GFLOPS="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["gflops"])' "$peak_json")"
            export PEAK_GFLOPS
        fi
        run_json "medsynth dcgan64" "$BIN" bench dcgan --image-size 64 --channels 3 --batch-size 64 --peak "$PEAK_GFLOPS" --json
        run_json "medsynth dcgan28" "$BIN" bench dcgan --image-size 28 --channels 1 --batch-size 64 --peak "$PEAK_GFLOPS" --json
    else
        note "NOTE: $BIN does not exist (yet); running the peers only"
    fi
fi

# ---- Peers ------------------------------------------------------------------
for model in dcgan64 dcgan28; do
    run_json "pytorch $model" "$PY" "$ROOT/bench/peers/dcgan_torch.py" --model "$model" \
        --batch-size 64 --steps "$STEPS" --warmup "$WARMUP" --threads "$THREADS"
    run_json "tensorflow $model" "$PY" "$ROOT/bench/peers/dcgan_tf.py" --model "$model" \
        --batch-size 64 --steps "$STEPS" --warmup "$WARMUP" --threads "$THREADS"
done

cp "$OUT" "$RESULTS/run-$(date -u +%Y%m%dT%H%M%SZ).jsonl"
note "raw results: $OUT"
"$PY" "$ROOT/bench/report.py" "$OUT"
