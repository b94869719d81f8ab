#!/usr/bin/env bash
# Two medsynth binaries side by side on the training steps the issue tracks: ABBA-interleaved
# rounds of `bench dcgan` (28 px one channel, 64 px three channels) and `bench classifier --arch
# resnet`, in bf16 and f32, then a table of the medians of each round's 20-step median.
#
#   flock -x /work/cpu.lock bash bench/ab-steps.sh OLD_BINARY NEW_BINARY [ROUNDS=4] [OUT_DIR]
set -euo pipefail
a=$1 b=$2 rounds=${3:-4} out=${4:-$(mktemp -d)}
mkdir -p "$out"
unset OMP_WAIT_POLICY GOMP_SPINCOUNT  # each binary chooses its own (passive in f32, a short spin in bf16)
run() {  # binary label precision bench-arguments...
    local bin=$1 label=$2 precision=$3
    shift 3
    MEDSYNTH_CONV_PRECISION=$precision "$bin" bench "$@" --json >>"$out/$label.jsonl" 2>/dev/null
}
for i in $(seq "$rounds"); do
    order="A B"
    [ $((i % 2)) = 0 ] && order="B A"
    for which in $order; do
        bin=$a
        [ "$which" = B ] && bin=$b
        for precision in bf16 f32; do
            run "$bin" "${which}_dcgan28_$precision" $precision dcgan --image-size 28 --channels 1 --steps 20 --peak 528
            run "$bin" "${which}_resnet28_$precision" $precision classifier --arch resnet --steps 20
        done
        run "$bin" "${which}_dcgan64_bf16" bf16 dcgan --image-size 64 --channels 3 --steps 10 --peak 528
    done
done
python3 - "$out" <<'PY'
import json, statistics, sys
d = sys.argv[1]
print(f"results in {d}\n| step | A ms | B ms | A / B | pairs A/B |\n|---|---:|---:|---:|---|")
for m in ["dcgan28_bf16", "dcgan28_f32", "dcgan64_bf16", "resnet28_bf16", "resnet28_f32"]:
    r = {w: [json.loads(l)["step_ms_median"] for l in open(f"{d}/{w}_{m}.jsonl")] for w in "AB"}
    a, b = statistics.median(r["A"]), statistics.median(r["B"])
    pairs = " ".join(f"{x:.1f}/{y:.1f}" for x, y in zip(r["A"], r["B"]))
    print(f"| {m} | {a:.1f} | {b:.1f} | {a / b:.3f}x | {pairs} |")
PY
