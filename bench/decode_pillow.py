"""Reference for `medsynth data bench`: Pillow + numpy doing the same job.

Decodes every JPEG (and PNG) of a class-folder tree, resizes each to SIZE x SIZE with area
averaging (Pillow's BOX filter; a no-op copy when the size already matches), stacks them into
one float32 array scaled by 1/255, and reports the median of 5 runs.

    python3 -m venv .venv-bench && .venv-bench/bin/pip install pillow numpy
    .venv-bench/bin/python bench/decode_pillow.py ../shared/data/dermamnist-jpeg --image-size 28
"""
import argparse
import os
import statistics
import time

import numpy as np
from PIL import Image


def list_files(root):
    files = []
    for cls in sorted(d for d in os.listdir(root) if not d.startswith(".")):
        folder = os.path.join(root, cls)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if not name.startswith(".") and name.lower().endswith((".png", ".jpg", ".jpeg")):
                files.append(os.path.join(folder, name))
    return files


def load_all(files, size):
    images = []
    for path in files:
        with Image.open(path) as im:
            im = im.convert("RGB" if im.mode not in ("L", "I;16") else "L")
            if im.size != (size, size):
                im = im.resize((size, size), Image.BOX)
            a = np.asarray(im, dtype=np.float32) / 255.0
        images.append(a.transpose(2, 0, 1) if a.ndim == 3 else a[None])
    return np.stack(images)  # (N, C, H, W)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("--image-size", type=int, default=28)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    files = list_files(args.path)
    times, checksum = [], 0.0
    for _ in range(args.repeats):
        start = time.perf_counter()
        out = load_all(files, args.image_size)
        times.append(time.perf_counter() - start)
        checksum += float(out.sum())
    median = statistics.median(times)
    print(f"{len(files)} images x {args.repeats} runs: median {median:.4f} s, "
          f"{len(files) / median:.0f} images/s (checksum {checksum / args.repeats:.1f})")


if __name__ == "__main__":
    main()
