#!/usr/bin/env bash
# GAN defaults A/B on the smallest-but-one real class: breast malignant, 600 steps, seed 0.
cd "$(dirname "$0")/.."; mkdir -p "${OUT:-/tmp/ab}"
B=.build/release/medsynth
for v in "default|" "no-diffaugment|--no-diff-augment" "no-ema|--ema-decay 0" "sn-hinge|--spectral-norm --loss hinge"; do
  name=${v%%|*}; args=${v#*|}
  $B gan train --data ../shared/data/breastmnist-png --class malignant --max-steps 600 --epochs 10000 --grid-every 100000 \
     --out ${OUT:-/tmp/ab}/$name --overwrite --no-track $args > ${OUT:-/tmp/ab}/$name.log 2>&1
  $B audit --synthetic ${OUT:-/tmp/ab}/$name/checkpoint.safetensors --data ../shared/data/breastmnist-png --class malignant \
     --out ${OUT:-/tmp/ab}/$name-audit 2>&1 | grep "malignant:" | sed "s/^/$name /"
done
