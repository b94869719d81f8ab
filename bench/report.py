#!/usr/bin/env python3
"""Prints the Markdown comparison table for bench/compare.sh from a JSONL file.

Each line: one JSON object with at least framework, model, step_ms_median,
images_per_s, gflops, and the round it ran in ("round", 1 when absent).  The last
columns are the speedup of MedSynth over each row's framework: row step_ms /
medsynth step_ms (same model).  With several rounds (compare.sh --rounds N), each
row is the median over the rounds and each ratio the median of the rounds' own
ratios (MedSynth and the peer measured minutes apart in the same round), with the
range over the rounds.
"""
import json
import os
import statistics
import sys

# The machine's FP32 peak: compare.sh measures it with `medsynth bench peak` (the widest FMA the
# CPU has, AVX-512 where present) unless PEAK_GFLOPS is given; medsynth's rows carry it too.
PEAK = float(os.environ["PEAK_GFLOPS"]) if os.environ.get("PEAK_GFLOPS") else None
# The bf16 dot-product peak (VDPBF16PS), for rows whose convolutions ran in bf16 (compare.sh --bf16).
BF16_PEAK = float(os.environ["BF16_PEAK_GFLOPS"]) if os.environ.get("BF16_PEAK_GFLOPS") else None
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


def precision(r):
    return r.get("precision", "f32")


def merge_rounds(rows, key):
    """One row per (model, framework, precision): the medians over the rounds of `key` and of
    the rates, the rounds' values of `key` kept in `by_round` for the paired ratios."""
    groups = {}
    for r in rows:
        if r.get(key) is None:
            continue
        groups.setdefault((model_key(r), r.get("framework"), precision(r)), []).append(r)
    merged = []
    for group in groups.values():
        m = dict(group[0])
        for k in (key, "images_per_s", "gflops", "infer_images_per_s"):
            values = [g[k] for g in group if g.get(k) is not None]
            m[k] = statistics.median(values) if values else None
        m["by_round"] = {g.get("round", 1): g[key] for g in group}
        merged.append(m)
    return merged


def ratio_cell(r, base, key):
    """Median over the rounds of this row's time / MedSynth's in the same round (range if several)."""
    ratios = [ms / base[rnd] for rnd, ms in r["by_round"].items() if base.get(rnd)]
    if not ratios:
        return "n/a"
    cell = f"{statistics.median(ratios):.2f}x"
    return cell + (f" ({min(ratios):.2f}-{max(ratios):.2f})" if min(ratios) != max(ratios) else "")


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

    peak = PEAK or next((r["peak_gflops"] for r in rows
                         if r.get("peak_gflops") and r.get("precision", "f32") == "f32"), None)
    bf16_peak = BF16_PEAK or next((r["peak_gflops"] for r in rows
                                   if r.get("peak_gflops") and r.get("precision") == "bf16"), None)

    all_rows = rows
    rounds = len({r.get("round", 1) for r in all_rows})
    rows = merge_rounds(all_rows, "step_ms_median")
    # MedSynth's step times per model, precision and round: every row's ratio is to MedSynth in
    # f32 and, where MedSynth ran in bf16 too, to MedSynth in bf16.
    base = {(model_key(r), precision(r)): r["by_round"] for r in rows if r.get("framework") == "medsynth"}
    has_bf16 = any(p == "bf16" for (_, p) in base)
    rows.sort(key=lambda r: (MODEL_ORDER.get(model_key(r), 9), model_key(r),
                             FW_ORDER.get(r.get("framework"), 9), precision(r) != "f32"))

    peaks = f"% of peak ({fmt(peak)} f32" + (f", {fmt(bf16_peak)} bf16" if bf16_peak else "") + " GFLOP/s)"
    if rounds > 1:
        print(f"{rounds} rounds: medians over the rounds; ratios: median of the rounds' ratios (range).")
        print()
    print(f"| model | framework | precision | step ms (median) | images/s | GFLOP/s | {peaks} "
          f"| ratio to medsynth f32 |" + (" ratio to medsynth bf16 |" if has_bf16 else ""))
    print("|---|---|---|---:|---:|---:|---:|---:|" + ("---:|" if has_bf16 else ""))
    for r in rows:
        fw = r.get("framework", "?")
        extra = r.get("memory_format") if fw == "pytorch" else (
            f"inter-op {r['inter_op_threads']}" if "inter_op_threads" in r else None)
        fw_cell = f"{fw} ({extra})" if extra else fw
        ms = r.get("step_ms_median")
        gf = r.get("gflops")
        row_peak = bf16_peak if precision(r) == "bf16" else peak
        cells = " | ".join(ratio_cell(r, base.get((model_key(r), p), {}), "step_ms_median")
                           for p in (["f32", "bf16"] if has_bf16 else ["f32"]))
        print(f"| {r.get('model', '?')} | {fw_cell} | {precision(r)} | {fmt(ms)} | {fmt(r.get('images_per_s'))} | "
              f"{fmt(gf)} | {fmt(None if gf is None or not row_peak else 100 * gf / row_peak)}% | {cells} |")
    print()
    print("ratio to medsynth = peer step ms / medsynth step ms (>1: MedSynth is faster).")
    print("GFLOP/s = analytic FLOPs of what each framework's step computes / median step time "
          "(PyTorch also computes D's weight grads in the G step, TF does not; see bench/README.md). "
          "MedSynth runs 3x3 stride-1 convolutions as Winograd F(4x4, 3x3) on AVX-512 CPUs and "
          "counts them at their direct cost, so its GFLOP/s can pass the FMA peak. "
          "bf16 rows: convolutions with bfloat16 inputs and f32 accumulation (MedSynth: "
          "MEDSYNTH_CONV_PRECISION=bf16; PyTorch: CPU autocast), % of the bf16 dot-product peak.")
    if not base:
        print("No medsynth results: ratios are n/a.")
    inference = merge_rounds(all_rows, "infer_ms_median")
    inference.sort(key=lambda r: (MODEL_ORDER.get(model_key(r), 9), model_key(r),
                                  FW_ORDER.get(r.get("framework"), 9), precision(r) != "f32"))
    if inference:  # the classifiers' inference batches (evaluation mode, softmax, no graph)
        ibase = {(model_key(r), precision(r)): r["by_round"] for r in inference if r.get("framework") == "medsynth"}
        print()
        print("| model | framework | precision | inference batch ms (median) | images/s | ratio to medsynth f32 |"
              + (" ratio to medsynth bf16 |" if has_bf16 else ""))
        print("|---|---|---|---:|---:|---:|" + ("---:|" if has_bf16 else ""))
        for r in inference:
            ms = r["infer_ms_median"]
            fw = r.get("framework", "?")
            fw_cell = f"{fw} ({r['memory_format']})" if fw == "pytorch" and r.get("memory_format") else fw
            cells = " | ".join(ratio_cell(r, ibase.get((model_key(r), p), {}), "infer_ms_median")
                               for p in (["f32", "bf16"] if has_bf16 else ["f32"]))
            print(f"| {r.get('model', '?')} | {fw_cell} | {precision(r)} | {fmt(ms, 2)} | "
                  f"{fmt(r.get('infer_images_per_s'))} | {cells} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else
                  os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "latest.jsonl")))
