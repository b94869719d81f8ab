#!/usr/bin/env bash
# Lint: `swift format lint` with the checked-in .swift-format over Sources and Tests; fails on
# any finding. `scripts/lint.sh --fix` rewrites the same files in place (`swift format format`).
#
# Always left out: Sources/Export/Generated (protoc's output from onnx.proto, committed as
# generated; scripts/generate-onnx-proto.sh rewrites it).
set -euo pipefail
cd "$(dirname "$0")/.."
excluded=(
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
