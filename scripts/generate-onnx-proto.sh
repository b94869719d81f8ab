#!/usr/bin/env bash
# Regenerates Sources/Export/Generated/onnx.pb.swift from Sources/Export/Generated/onnx.proto
# (copied unchanged from the `onnx` PyPI package, 1.23.2: `python3 -c "import onnx, os;
# print(os.path.dirname(onnx.__file__))"`/onnx.proto). Run by hand when the schema changes, then
# commit the output; the package build never runs protoc (building the plugin takes ~10 min).
# Needs protoc (Debian: protobuf-compiler) and protoc-gen-swift of the swift-protobuf version in
# Package.resolved: `git clone --branch 1.39.0 https://github.com/apple/swift-protobuf` and
# `swift build -c release --product protoc-gen-swift` there; pass its path as $1.
set -euo pipefail
cd "$(dirname "$0")/.."
plugin="${1:?usage: scripts/generate-onnx-proto.sh PATH/TO/protoc-gen-swift}"
protoc --plugin=protoc-gen-swift="$plugin" --swift_opt=Visibility=Internal \
    --swift_out=Sources/Export/Generated -I Sources/Export/Generated onnx.proto
echo "wrote Sources/Export/Generated/onnx.pb.swift"
