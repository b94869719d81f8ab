#!/usr/bin/env python3
"""How large a per-class recall gain can a 3-seed experiment detect? (README, skin section)

Simulates paired experiments: S seeds x N test images of one class, each (seed, image) classified
correctly with probability p0 (reference arm) or p1 (other arm), independently. For each simulated
experiment it draws the crossed two-level bootstrap (seeds and images resampled, the same draws for
both arms) and counts how often the percentile interval at LEVEL lies above 0. Independent rows are
the optimistic case: real images are hard or easy in every seed, which widens the real intervals,
and MedSynth's intervals are studentized (t tails), wider again. So the powers printed are upper
bounds. Needs numpy. Usage: python3 scripts/recall-power.py [SIMS] (default 200; ~10 min).
"""
import sys
import numpy as np

LEVEL = 0.99  # about the Holm level of the first comparisons in the skin report
RESAMPLES = 2000
rng = np.random.default_rng(0)


def lower_bound(a, b):
    s, n = a.shape
    d = b - a
    seeds = rng.integers(0, s, (RESAMPLES, s))
    images = rng.integers(0, n, (RESAMPLES, n))
    reps = np.array([d[np.ix_(seeds[k], images[k])].mean() for k in range(RESAMPLES)])
    return np.quantile(reps, (1 - LEVEL) / 2)


def power(p0, p1, n, s=3, sims=200):
    hits = 0
    for _ in range(sims):
        a = (rng.random((s, n)) < p0).astype(float)
        b = (rng.random((s, n)) < p1).astype(float)
        hits += lower_bound(a, b) > 0
    return hits / sims


if __name__ == "__main__":
    sims = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    # Skin: `weighted`'s recall on 9 dermatofibromas and 11 vascular lesions of the test split.
    for name, n, p0 in [("dermatofibroma", 9, 0.259), ("vascular_lesion", 11, 0.667)]:
        for p1 in sorted({min(p0 + d, 1.0) for d in (0.2, 0.3, 0.4, 0.5, 0.6)}):
            print(f"{name}: {n} test images, recall {p0:.2f} -> {p1:.2f}: power {power(p0, p1, n, sims=sims):.2f}")
