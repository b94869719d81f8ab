#!/usr/bin/env bash
# The main job: set up, then train a DCGAN on the minority class (malignant) of the breast
# ultrasound set in ../shared/data, writing sample grids, losses and a checkpoint to runs/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
data="${MEDSYNTH_DATA:-../shared/data}"
out="${MEDSYNTH_OUT:-runs/main}"
.build/release/medsynth data inspect "$data/breastmnist-png"
.build/release/medsynth gan train --data "$data/breastmnist-png" --class malignant --image-size 28 \
    --epochs "${MEDSYNTH_EPOCHS:-300}" --out "$out/gan-breast-malignant" "$@"
echo "grids: $out/gan-breast-malignant/grid-final.png (and grid-epoch-*.png)"
