#!/usr/bin/env python3
"""Prints the Markdown comparison table for bench/compare.sh from a JSONL file.

Each line: one JSON object with at least framework, model, step_ms_median,
images_per_s, gflops.  The last column is the speedup of MedSynth over each
row's framework: row step_ms / medsynth step_ms (same model).
"""
import json
import os
import sys

# The machine's FP32 peak: compare.sh measures it with `medsynth bench peak` (the widest FMA the
# CPU has, AVX-512 where present) unless PEAK_GFLOPS is given; medsynth's rows carry it too.
PEAK = float(os.environ["PEAK_GFLOPS"]) if os.environ.get("PEAK_GFLOPS") else None
FW_ORDER = {"medsynth": 0, "pytorch": 1, "tensorflow": 2}
MODEL_ORDER = {"dcgan64": 0, "dcgan28": 1, "resnet28x3": 2, "papercnn28x3": 3, "resnet64x3": 4,
               "papercnn64x3": 5}


def model_key(r):
    m = str(r.get("model", "?"))
    # accept e.g. "dcgan-64" / "dcgan_64" from the Swift side too
    norm = m.lower().replace("-", "").replace("_", "")
    return norm


def fmt(x, nd=1):
    return "n/a" if x is None else f"{x:,.{nd}f}"


def main(path):
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                print(f"[report] {path}:{n}: bad JSON ({e}); skipped", file=sys.stderr)
    if not rows:
        print("[report] no results", file=sys.stderr)
        return 1

    peak = PEAK or next((r["peak_gflops"] for r in rows if r.get("peak_gflops")), None)
    base = {model_key(r): r["step_ms_median"] for r in rows
            if r.get("framework") == "medsynth" and r.get("step_ms_median")}
    rows.sort(key=lambda r: (MODEL_ORDER.get(model_key(r), 9), model_key(r),
                             FW_ORDER.get(r.get("framework"), 9)))

    print(f"| model | framework | step ms (median) | images/s | GFLOP/s | % of {fmt(peak)} GFLOP/s peak "
          f"| ratio to medsynth |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        fw = r.get("framework", "?")
        extra = r.get("memory_format") if fw == "pytorch" else (
            f"inter-op {r['inter_op_threads']}" if "inter_op_threads" in r else None)
        fw_cell = f"{fw} ({extra})" if extra else fw
        ms = r.get("step_ms_median")
        gf = r.get("gflops")
        b = base.get(model_key(r))
        ratio = f"{ms / b:.2f}x" if (b and ms) else "n/a"
        print(f"| {r.get('model', '?')} | {fw_cell} | {fmt(ms)} | {fmt(r.get('images_per_s'))} | "
              f"{fmt(gf)} | {fmt(None if gf is None or not peak else 100 * gf / peak)}% | {ratio} |")
    print()
    print("ratio to medsynth = peer step ms / medsynth step ms (>1: MedSynth is faster).")
    print("GFLOP/s = analytic FLOPs of what each framework's step computes / median step time "
          "(PyTorch also computes D's weight grads in the G step, TF does not; see bench/README.md). "
          "MedSynth runs 3x3 stride-1 convolutions as Winograd F(4x4, 3x3) on AVX-512 CPUs and "
          "counts them at their direct cost, so its GFLOP/s can pass the FMA peak.")
    if not base:
        print("No medsynth results: ratios are n/a.")
    inference = [r for r in rows if r.get("infer_ms_median")]
    if inference:  # the classifiers' inference batches (evaluation mode, softmax, no graph)
        ibase = {model_key(r): r["infer_ms_median"] for r in inference if r.get("framework") == "medsynth"}
        print()
        print("| model | framework | inference batch ms (median) | images/s | ratio to medsynth |")
        print("|---|---|---:|---:|---:|")
        for r in inference:
            ms, b = r["infer_ms_median"], ibase.get(model_key(r))
            fw = r.get("framework", "?")
            fw_cell = f"{fw} ({r['memory_format']})" if fw == "pytorch" and r.get("memory_format") else fw
            print(f"| {r.get('model', '?')} | {fw_cell} | {fmt(ms, 2)} | {fmt(r.get('infer_images_per_s'))} | "
                  f"{f'{ms / b:.2f}x' if b else 'n/a'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else
                  os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "latest.jsonl")))
