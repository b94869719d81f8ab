#!/usr/bin/env python3
"""PyTorch peer: times one full DCGAN training step (pytorch/examples dcgan/main.py).

One step:
  D step: D(real) -> BCEWithLogits vs 1; fake = G(z); D(fake.detach()) -> BCE vs 0;
          backward both, Adam step on D.
  G step: D(fake) (same fake batch, not detached) -> BCE vs 1; backward, Adam step on G.
Adam lr 2e-4, betas (0.5, 0.999).  D is not frozen in the G step, as in pytorch/examples.

Runs NCHW (contiguous) and channels_last (interleaved step by step), reports
the faster median as the headline and both medians under "variants".  Prints ONE JSON line on stdout.
"""

import argparse
import contextlib
import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dcgan_spec import MODELS, gflop_per_step, step_flops_per_image  # noqa: E402

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from timing import time_interleaved  # noqa: E402  (bench/peers/timing.py, beside this script)


def build(layers):
    mods = []
    for L in layers:
        if L.kind == "convT":
            mods.append(nn.ConvTranspose2d(L.cin, L.cout, L.k, L.s, L.p, bias=False))
        else:
            mods.append(nn.Conv2d(L.cin, L.cout, L.k, L.s, L.p, bias=False))
        if L.bn:
            mods.append(nn.BatchNorm2d(L.cout, eps=1e-5, momentum=0.1, affine=True))
        if L.act == "relu":
            mods.append(nn.ReLU(inplace=True))
        elif L.act == "lrelu":
            mods.append(nn.LeakyReLU(0.2, inplace=True))
        elif L.act == "tanh":
            mods.append(nn.Tanh())
    net = nn.Sequential(*mods)

    def init(m):
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)

    net.apply(init)
    return net


def precision_context(precision):
    """The forward passes' context: CPU autocast to bfloat16 (convolutions in bf16, weights,
    batch norm and optimizer in f32, as MedSynth's MEDSYNTH_CONV_PRECISION=bf16), or nothing."""
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def make_step(spec, batch, memory_format, precision="f32", seed=1234):
    """Build G, D, optimizers and data; return a closure running one training step."""
    torch.manual_seed(seed)
    G = build(spec.G)
    D = build(spec.D)
    G.train()
    D.train()
    G = G.to(memory_format=memory_format)
    D = D.to(memory_format=memory_format)
    criterion = nn.BCEWithLogitsLoss()
    optD = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optG = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))

    real = (torch.rand(batch, spec.channels, spec.image_size, spec.image_size) * 2 - 1)
    real = real.contiguous(memory_format=memory_format)
    ones = torch.full((batch,), 1.0)
    zeros = torch.full((batch,), 0.0)

    # sanity: shapes match the spec
    with torch.no_grad():
        z = torch.randn(2, spec.nz, 1, 1)
        assert G(z).shape == (2, spec.channels, spec.image_size, spec.image_size)
        assert D(real[:2]).shape == (2, 1, 1, 1)

    def step():
        # (1) D: maximize log(D(x)) + log(1 - D(G(z)))
        D.zero_grad()
        with precision_context(precision):
            out = D(real).view(-1)
            errD_real = criterion(out.float(), ones)
        errD_real.backward()
        noise = torch.randn(batch, spec.nz, 1, 1).contiguous(memory_format=memory_format)
        with precision_context(precision):
            fake = G(noise)
            out = D(fake.detach()).view(-1)
            errD_fake = criterion(out.float(), zeros)
        errD_fake.backward()
        optD.step()
        # (2) G: maximize log(D(G(z)))
        G.zero_grad()
        with precision_context(precision):
            out = D(fake).view(-1)
            errG = criterion(out.float(), ones)
        errG.backward()
        optG.step()
        loss = errD_real.item() + errD_fake.item() + errG.item()
        assert loss == loss, "NaN loss"

    return step


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=sorted(MODELS), default="dcgan64")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--memory-format", choices=["both", "contiguous", "channels_last"], default="both",
                    help="which memory format(s) to time (default: both, report the faster)")
    ap.add_argument("--precision", choices=["f32", "bf16"], default="f32",
                    help="bf16: forward passes under CPU autocast to bfloat16")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    spec = MODELS[args.model]
    per_img = step_flops_per_image(spec, d_weight_grads_in_g_step=True)["total"] / 1e9
    gflop = gflop_per_step(spec, args.batch_size, d_weight_grads_in_g_step=True)
    print(f"[dcgan_torch] {spec.name}: {per_img:.4f} GFLOP/image/step "
          f"(incl. D weight grads in G step), {gflop:.2f} GFLOP/step at batch {args.batch_size}",
          file=sys.stderr)

    formats = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
    names = list(formats) if args.memory_format == "both" else [args.memory_format]
    results = time_interleaved({n: make_step(spec, args.batch_size, formats[n], args.precision) for n in names},
                               args.steps, args.warmup)
    for name, times in results.items():
        print(f"[dcgan_torch] {spec.name} {name}: median {statistics.median(times):.1f} ms/step "
              f"(min {min(times):.1f})", file=sys.stderr)

    best = min(results, key=lambda n: statistics.median(results[n]))
    times = results[best]
    med = statistics.median(times)
    out = {
        "framework": "pytorch",
        "model": spec.name,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "step_ms_median": round(med, 3),
        "step_ms_all": [round(t, 3) for t in times],
        "step_ms_min": round(min(times), 3),
        "images_per_s": round(args.batch_size / (med / 1e3), 2),
        "gflop_per_step": round(gflop, 4),
        "gflops": round(gflop / (med / 1e3), 2),
        "memory_format": best,
        "precision": args.precision,
        "variants": {n: {"step_ms_median": round(statistics.median(t), 3), "step_ms_min": round(min(t), 3)}
                     for n, t in results.items()},
        "gflop_per_image": round(per_img, 4),
        "version": torch.__version__,
        "mkldnn": {"available": torch.backends.mkldnn.is_available(),
                   "enabled": bool(torch.backends.mkldnn.enabled)},
        "steps": args.steps,
        "warmup": args.warmup,
    }
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
