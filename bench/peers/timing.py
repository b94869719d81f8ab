"""Timing shared by the PyTorch peers (dcgan_torch.py, classifier_torch.py)."""

import time


def time_interleaved(fns, steps, warmup):
    """Warm up every variant, then alternate them call by call, so that load from other
    processes on a shared machine hits all variants alike. Returns milliseconds per call, per
    variant name, warm-up calls left out."""
    times = {n: [] for n in fns}
    for i in range(warmup + steps):
        for n, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            if i >= warmup:
                times[n].append(dt * 1e3)
    return times
