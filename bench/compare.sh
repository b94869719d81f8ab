#!/usr/bin/env bash
# Runs the MedSynth DCGAN and classifier benchmarks and their PyTorch / TensorFlow peers
# (classifiers: PyTorch only) on this machine, one after another, saves the raw JSON lines to
# bench/results/latest.jsonl and prints a Markdown comparison table. Each model's MedSynth rows
# run right before its peers' (the machine's speed drifts over minutes: a whole MedSynth pass
# first put a minute or more between the two figures a ratio divides).
#
# Usage: bash bench/compare.sh [--no-build] [--peers-only] [--only dcgan|classifier] [--bf16] [--rounds N] [--steps N] [--warmup N] [--threads N]
#   --no-build    never run `swift build`, even if .build/release/medsynth is missing
#   --peers-only  skip MedSynth entirely
#   --only WHAT   run only the DCGAN part or only the classifier part (ResNet and paper CNN,
#                 28 and 64 px, 3 channels, 7 classes, batch 64)
#   --threads N   the peers' torch.set_num_threads and MedSynth's OMP_NUM_THREADS
#   --bf16        also run MedSynth with MEDSYNTH_CONV_PRECISION=bf16 and PyTorch under bf16
#                 autocast (on a CPU with AVX512_BF16; TensorFlow stays f32), each row labelled
#   --rounds N    run everything N times (1...20, default 1); the table gives medians over the
#                 rounds, and each ratio is the median of the rounds' own ratios with their range
# Env: PEAK_GFLOPS for the "% of peak" column (default: `medsynth bench peak`, the widest FMA
#      the CPU has on every core, AVX-512 where present);
#      MEDSYNTH_BIN (default .build/release/medsynth) to benchmark another binary;
#      PEER_PYTHON: a python that already has the peers' frameworks (then no .venv-bench setup).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="${PEER_PYTHON:-$ROOT/.venv-bench/bin/python}"
BIN="${MEDSYNTH_BIN:-$ROOT/.build/release/medsynth}"
RESULTS="$ROOT/bench/results"
OUT="$RESULTS/latest.jsonl"

BUILD=1; MEDSYNTH=1; STEPS=10; WARMUP=3; THREADS=2; ONLY=all; BF16=0; ROUNDS=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --no-build) BUILD=0 ;;
        --peers-only) MEDSYNTH=0 ;;
        --only) ONLY="$2"; shift ;;
        --steps) STEPS="$2"; shift ;;
        --warmup) WARMUP="$2"; shift ;;
        --threads) THREADS="$2"; shift ;;
        --bf16) BF16=1 ;;
        --rounds) ROUNDS="$2"; shift ;;
        -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done
case "$ONLY" in all|dcgan|classifier) ;; *) echo "--only $ONLY: use dcgan or classifier" >&2; exit 2 ;; esac
[[ "$THREADS" =~ ^[0-9]+$ && "$THREADS" -ge 1 && "$THREADS" -le 256 ]] || { echo "--threads $THREADS: use 1...256" >&2; exit 2; }
[[ "$ROUNDS" =~ ^[0-9]+$ && "$ROUNDS" -ge 1 && "$ROUNDS" -le 20 ]] || { echo "--rounds $ROUNDS: use 1...20" >&2; exit 2; }
export OMP_NUM_THREADS="$THREADS"
# Every framework waits between parallel regions the way it does by default: an
# OMP_WAIT_POLICY=passive left in the caller's shell made PyTorch's OpenMP threads sleep after
# every operator (its 28 px DCGAN step 72-79 ms instead of 64), and MedSynth chooses its own.
for v in OMP_WAIT_POLICY GOMP_SPINCOUNT KMP_BLOCKTIME MEDSYNTH_OPENMP_SET; do
    [[ -n "${!v:-}" ]] && echo "[compare] unsetting $v=${!v}: each framework runs with its own default" >&2
    unset "$v"
done
# The classifiers: architecture, side, channels (the JSON "model" names: resnet28x3, ...).
CLASSIFIERS=("resnet 28 3" "paper-cnn 28 3" "resnet 64 3" "paper-cnn 64 3")

if [[ -z "${PEER_PYTHON:-}" ]]; then
    bash "$ROOT/bench/setup_peers.sh" || { echo "[compare] setup_peers.sh failed" >&2; exit 1; }
fi
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

ROUND=1
run_json() {  # run_json LABEL CMD...  -> appends one JSON line, with "round": ROUND, to $OUT
    local label="$1"; shift
    note "round $ROUND/$ROUNDS: running $label: $*"
    local line
    line="$("$@" | last_json)"
    local rc=$?   # pipefail: non-zero if the command failed or printed no JSON line
    if [[ $rc -ne 0 || -z "$line" ]]; then
        note "$label failed (rc=$rc) or printed no JSON line; skipped"
        return 1
    fi
    python3 -c 'import json, sys; d = json.loads(sys.argv[1]); d["round"] = int(sys.argv[2]); print(json.dumps(d))' \
        "$line" "$ROUND" >> "$OUT"
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
            BF16_PEAK_GFLOPS="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get("bf16_gflops") or "")' "$peak_json")"
            export PEAK_GFLOPS BF16_PEAK_GFLOPS
        fi
        if [[ $BF16 -eq 1 && -z "${BF16_PEAK_GFLOPS:-}" ]]; then
            note "--bf16: this CPU has no AVX512_BF16 (bench peak measured no bf16 loop); running f32 only"
            BF16=0
        fi
        PRECISIONS=(f32); [[ $BF16 -eq 1 ]] && PRECISIONS+=(bf16)
    else
        note "NOTE: $BIN does not exist (yet); running the peers only"
        MEDSYNTH=0
    fi
fi
PEER_PRECISIONS=(f32); [[ $BF16 -eq 1 ]] && PEER_PRECISIONS+=(bf16)
peak_for() { if [[ $1 == bf16 ]]; then echo "$BF16_PEAK_GFLOPS"; else echo "$PEAK_GFLOPS"; fi; }

# ---- The rounds: per model, MedSynth's rows, then its peers' ---------------
for ROUND in $(seq "$ROUNDS"); do
    if [[ $ONLY != classifier ]]; then
        for m in "64 3" "28 1"; do
            read -r size channels <<< "$m"
            if [[ $MEDSYNTH -eq 1 ]]; then
                for precision in "${PRECISIONS[@]}"; do
                    run_json "medsynth dcgan$size $precision" env MEDSYNTH_CONV_PRECISION=$precision "$BIN" bench dcgan \
                        --image-size "$size" --channels "$channels" --batch-size 64 --peak "$(peak_for $precision)" --json
                done
            fi
            for precision in "${PEER_PRECISIONS[@]}"; do
                run_json "pytorch dcgan$size $precision" "$PY" "$ROOT/bench/peers/dcgan_torch.py" --model "dcgan$size" \
                    --batch-size 64 --steps "$STEPS" --warmup "$WARMUP" --threads "$THREADS" --precision "$precision"
            done
            run_json "tensorflow dcgan$size" "$PY" "$ROOT/bench/peers/dcgan_tf.py" --model "dcgan$size" \
                --batch-size 64 --steps "$STEPS" --warmup "$WARMUP" --threads "$THREADS"
        done
    fi
    if [[ $ONLY != dcgan ]]; then
        for c in "${CLASSIFIERS[@]}"; do
            read -r arch size channels <<< "$c"
            if [[ $MEDSYNTH -eq 1 ]]; then
                for precision in "${PRECISIONS[@]}"; do
                    run_json "medsynth $arch$size $precision" env MEDSYNTH_CONV_PRECISION=$precision "$BIN" bench classifier \
                        --arch "$arch" --image-size "$size" --channels "$channels" --classes 7 --batch-size 64 \
                        --steps "$STEPS" --warmup "$WARMUP" --json
                done
            fi
            for precision in "${PEER_PRECISIONS[@]}"; do
                run_json "pytorch $arch$size $precision" "$PY" "$ROOT/bench/peers/classifier_torch.py" --arch "$arch" \
                    --image-size "$size" --channels "$channels" --classes 7 --batch-size 64 --steps "$STEPS" \
                    --warmup "$WARMUP" --threads "$THREADS" --precision "$precision"
            done
        done
    fi
done

cp "$OUT" "$RESULTS/run-$(date -u +%Y%m%dT%H%M%SZ).jsonl"
note "raw results: $OUT"
"$PY" "$ROOT/bench/report.py" "$OUT"
