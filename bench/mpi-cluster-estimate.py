#!/usr/bin/env python3
"""On paper: how long the skin experiment's grid would take over P MPI ranks.

Reads the per-piece costs of a finished experiment folder (each generator's `done.json` seconds,
each cell's `cell.json` seconds + synthesis seconds; seeds whose cells are missing take seed 0's
costs) and replays the ranks' claim protocol: each free rank takes the first piece no rank holds,
in `Experiment.work()`'s order (every seed's generators, then every seed's cells in arm order),
and waits for the pieces it needs (a dcgan cell its seed's per-class DCGANs, cdcgan arms the
cdcgan, +filter the `original` cell, +pretrain the arm without it). Communication and start-up
are ignored (seconds against cells of minutes).

    bench/mpi-cluster-estimate.py RUN_FOLDER [RANKS ...]
With CELLS_LIKE_SEED=S in the environment, every seed's cells take seed S's costs where S has them.
"""
import json, os, sys

folder = sys.argv[1]
like = os.environ.get("CELLS_LIKE_SEED")
ranks_list = [int(x) for x in sys.argv[2:]] or [1, 2, 16, 32, 64]
arms = ["original", "augment", "weighted", "oversample", "dcgan", "cdcgan", "cdcgan+filter",
        "cdcgan+pretrain", "cdcgan+augment", "synthetic-only"]
seeds = sorted(int(s.split("-")[1]) for s in os.listdir(os.path.join(folder, "generators")))
pieces = []  # (name, cost, deps)
for s in seeds:
    gdir = os.path.join(folder, "generators", f"seed-{s}")
    for g in sorted(os.listdir(gdir)):
        cost = json.load(open(os.path.join(gdir, g, "done.json")))["seconds"]
        pieces.append((f"{g}#{s}", cost, []))
for s in seeds:
    gens = [p[0] for p in pieces if p[0].endswith(f"#{s}")]
    for a in arms:
        f = os.path.join(folder, "arms", a, f"seed-{s}", "cell.json")
        if like is not None and os.path.exists(os.path.join(folder, "arms", a, f"seed-{like}", "cell.json")):
            f = os.path.join(folder, "arms", a, f"seed-{like}", "cell.json")
        if not os.path.exists(f):
            f = os.path.join(folder, "arms", a, "seed-0", "cell.json")
        c = json.load(open(f))
        cost = c["seconds"] + c.get("synthesisSeconds", 0)
        deps = []
        if a == "dcgan": deps = [g for g in gens if g.startswith("dcgan-")]
        if a.startswith("cdcgan") or a == "synthetic-only": deps = [f"cdcgan#{s}"]
        if a == "cdcgan+filter": deps += [f"original#{s}"]
        if a == "cdcgan+pretrain": deps += [f"cdcgan#{s}"]
        pieces.append((f"{a}#{s}", cost, deps))

total = sum(p[1] for p in pieces)
print(f"{len(pieces)} pieces, {total:.0f} rank-seconds in all; longest {max(p[1] for p in pieces):.0f} s")
for P in ranks_list:
    free = [0.0] * P  # when each rank is next free
    done = {}
    for name, cost, deps in pieces:  # in claim order: the earliest free rank takes the next piece
        r = min(range(P), key=lambda i: free[i])
        start = max([free[r]] + [done[d] for d in deps])
        done[name] = start + cost
        free[r] = done[name]
    span = max(done.values())
    print(f"{P:3d} ranks: {span / 3600:5.2f} h, speed-up {total / span:5.1f}x (ideal {min(P, len(pieces))}x)")
