#!/usr/bin/env bash
# The main job: set up, then the source paper's experiment (Ismail et al. 2023) on both of its
# datasets, built from ../shared/data: pneumonia (235 normal + 127 pneumonia) and skin (benign,
# malignant, vascular lesion, dermatofibroma); a plain DCGAN per class, the paper CNN on the
# original and the synthetic-augmented images. Reduced setting by default (about 10 minutes on
# 2 cores); `bash scripts/run.sh --full` for the full one. Reports in runs/paper/report.{html,md,json}.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
data="${MEDSYNTH_DATA:-../shared/data}"
out="${MEDSYNTH_OUT:-runs/paper}"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-passive}"
# Two worker processes with one thread each: these small models keep two cores busier that way.
.build/release/medsynth reproduce paper --data-root "$data" --out "$out" --jobs "${MEDSYNTH_JOBS:-2}" "$@"
echo "report: $out/report.html (and report.md, report.json)"
