#!/usr/bin/env bash
# The main job: set up, then the paper's experiment done right on the breast-ultrasound set in
# ../shared/data: every arm (original, augment, weighted, oversample, dcgan, cdcgan,
# synthetic-only) with the same ResNet and 3 seeds, reports in runs/main/breast/report.{html,md,json}.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
data="${MEDSYNTH_DATA:-../shared/data}"
out="${MEDSYNTH_OUT:-runs/main}"
.build/release/medsynth data inspect "$data/breastmnist-png"
.build/release/medsynth experiment --data "$data/breastmnist-png" --out "$out/breast" "$@"
echo "report: $out/breast/report.html (and report.md, report.json)"
