#!/usr/bin/env python3
"""PyTorch peer of `medsynth bench classifier`: the same two classifiers, layer for layer
(Sources/Classification/Models.swift), timed the same way.

  training step:   zero_grad; logits = net(x); cross_entropy(logits, y); backward; Adam(1e-3) step
  inference batch: eval mode, no_grad, softmax(net(x))

resnet:    conv3x3 (stride 2 from 64 px) -> BN -> ReLU [-> maxpool 3/2/1 from 128 px];
           basic blocks of widths 32, 64, 128 (the last two stride 2, 1x1 conv + BN shortcut
           where the shape changes); global average pool; Linear(128, K).  Convs without bias.
paper-cnn: per block conv3x3 pad 1 (widths 32, 64, 128, 128, 128) -> ReLU -> maxpool 2, while
           the side stays >= 3 after halving (28 px: 3 blocks, 64 px: 4); Flatten;
           Linear(., 128) -> ReLU -> Dropout(0.5) -> Linear(128, K).

Runs NCHW (contiguous) and channels_last interleaved step by step and reports the faster
training median as the headline (both under "variants"). Prints ONE JSON line on stdout.
"""

import argparse
import contextlib
import json
import statistics
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from timing import time_interleaved  # bench/peers/timing.py, beside this script


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (self.shortcut(x) if self.shortcut is not None else x))


def resnet(size, channels, classes):
    widths = [32, 64, 128]
    stem = [nn.Conv2d(channels, widths[0], 3, 2 if size >= 64 else 1, 1, bias=False),
            nn.BatchNorm2d(widths[0]), nn.ReLU()]
    if size >= 128:
        stem.append(nn.MaxPool2d(3, 2, 1))
    blocks, cin = [], widths[0]
    for s, w in enumerate(widths):
        blocks.append(BasicBlock(cin, w, 2 if s > 0 else 1))
        cin = w
    return nn.Sequential(*stem, *blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(widths[2], classes))


def paper_cnn(size, channels, classes):
    widths = [32, 64, 128, 128, 128]
    layers, c, side, b = [], channels, size, 0
    while side // 2 >= 3 and b < 5:
        layers += [nn.Conv2d(c, widths[b], 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2)]
        c, side, b = widths[b], side // 2, b + 1
    layers += [nn.Flatten(), nn.Linear(c * side * side, 128), nn.ReLU(), nn.Dropout(0.5), nn.Linear(128, classes)]
    return nn.Sequential(*layers)


ARCHS = {"resnet": resnet, "paper-cnn": paper_cnn}


def precision_context(precision):
    """The forward passes' context: CPU autocast to bfloat16 (convolutions and matmuls in bf16,
    weights and optimizer in f32, as MedSynth's MEDSYNTH_CONV_PRECISION=bf16), or nothing."""
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def make(arch, size, channels, classes, batch, memory_format, precision="f32", seed=1234):
    """Model, optimizer and data; returns (training step, inference batch) closures."""
    torch.manual_seed(seed)
    net = ARCHS[arch](size, channels, classes).to(memory_format=memory_format)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.rand(batch, channels, size, size).contiguous(memory_format=memory_format)
    y = torch.randint(0, classes, (batch,))
    with torch.no_grad():
        assert net.eval()(x[:2]).shape == (2, classes)

    def train_step():
        net.train()
        opt.zero_grad()
        with precision_context(precision):
            loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        assert loss.item() == loss.item(), "NaN loss"

    def infer():
        net.eval()
        with torch.no_grad(), precision_context(precision):
            F.softmax(net(x), dim=1)

    return train_step, infer


def count_flop(step):
    """FLOP of one call of `step` (torch's FlopCounterMode: convolutions and matmuls), or None."""
    try:
        from torch.utils.flop_counter import FlopCounterMode
    except ImportError:
        return None
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return counter.get_total_flops()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", choices=sorted(ARCHS), default="resnet")
    ap.add_argument("--image-size", type=int, default=28)
    ap.add_argument("--channels", type=int, choices=[1, 3], default=3)
    ap.add_argument("--classes", type=int, default=7)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--memory-format", choices=["both", "contiguous", "channels_last"], default="both",
                    help="which memory format(s) to time (default: both, report the faster)")
    ap.add_argument("--precision", choices=["f32", "bf16"], default="f32",
                    help="bf16: forward passes under CPU autocast to bfloat16")
    args = ap.parse_args()
    if not (28 <= args.image_size <= 128 and 2 <= args.classes <= 1000 and 2 <= args.batch_size <= 4096
            and 1 <= args.steps <= 100_000 and 0 <= args.warmup <= 10_000 and 1 <= args.threads <= 256):
        ap.error("out of range: image size 28...128, classes 2...1000, batch 2...4096, steps 1...100000, "
                 "warmup 0...10000, threads 1...256")

    torch.set_num_threads(args.threads)
    formats = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
    names = list(formats) if args.memory_format == "both" else [args.memory_format]
    made = {n: make(args.arch, args.image_size, args.channels, args.classes, args.batch_size, formats[n],
                   args.precision) for n in names}
    train = time_interleaved({n: m[0] for n, m in made.items()}, args.steps, args.warmup)
    infer = time_interleaved({n: m[1] for n, m in made.items()}, args.steps, args.warmup)
    model = f"{args.arch}{args.image_size}x{args.channels}"
    for n in names:
        print(f"[classifier_torch] {model} {n}: training step median {statistics.median(train[n]):.2f} ms, "
              f"inference batch median {statistics.median(infer[n]):.2f} ms", file=sys.stderr)

    best = min(names, key=lambda n: statistics.median(train[n]))
    med, inf_med = statistics.median(train[best]), statistics.median(infer[best])
    flop = count_flop(made[best][0])
    out = {
        "framework": "pytorch",
        "model": model,
        "batch_size": args.batch_size,
        "classes": args.classes,
        "threads": args.threads,
        "step_ms_median": round(med, 3),
        "step_ms_all": [round(t, 3) for t in train[best]],
        "infer_ms_median": round(inf_med, 3),
        "infer_ms_all": [round(t, 3) for t in infer[best]],
        "images_per_s": round(args.batch_size / (med / 1e3), 2),
        "infer_images_per_s": round(args.batch_size / (inf_med / 1e3), 2),
        "gflop_per_step": None if flop is None else round(flop / 1e9, 4),
        "gflops": None if flop is None else round(flop / 1e9 / (med / 1e3), 2),
        "memory_format": best,
        "precision": args.precision,
        "variants": {n: {"step_ms_median": round(statistics.median(train[n]), 3),
                         "infer_ms_median": round(statistics.median(infer[n]), 3)} for n in names},
        "version": torch.__version__,
        "steps": args.steps,
        "warmup": args.warmup,
    }
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
