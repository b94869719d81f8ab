#!/usr/bin/env bash
# Lint: `swift format lint` with the checked-in .swift-format over Sources and Tests; fails on
# any finding. `scripts/lint.sh --fix` rewrites the same files in place (`swift format format`).
#
# Left out for now (another engineer's work in flight; to be formatted and added once merged):
# the serving code and its tests, the diffusion target, the benchmarks, and the command-line
# files those engineers edit.
#
# Always left out: Sources/Export/Generated (protoc's output from onnx.proto, committed as
# generated; scripts/generate-onnx-proto.sh rewrites it).
set -euo pipefail
cd "$(dirname "$0")/.."
excluded=(
    Sources/Serving Tests/ServingTests Sources/Diffusion Tests/DiffusionTests
    Sources/medsynth/BenchCommand.swift Sources/medsynth/GANCommands.swift Sources/medsynth/OpsCommands.swift
    Sources/medsynth/ServedClassifier.swift Sources/Experiments/Synthesis.swift Sources/Experiments/Arm.swift
    Sources/GAN/Benchmark.swift Sources/Privacy/Benchmark.swift
    Sources/Export/Generated
)
prune=()
for path in "${excluded[@]}"; do prune+=(-path "./$path" -prune -o); done
mapfile -t files < <(find ./Sources ./Tests "${prune[@]}" -name '*.swift' -print | sort)
if [ "${1:-}" = "--fix" ]; then
    swift format format --configuration .swift-format --parallel --in-place "${files[@]}"
else
    swift format lint --configuration .swift-format --strict --parallel "${files[@]}"
    echo "lint: ${#files[@]} files clean (${#excluded[@]} paths excluded, see scripts/lint.sh)"
fi
