#!/usr/bin/env bash
# Builds a tiny package that depends on MedSynth's GAN and Classification libraries by path:
# the libraries must stay usable as dependencies of other packages (SwiftPM refuses a
# dependency whose manifest adds unsafeFlags, which is why MEDSYNTH_NATIVE is opt-in).
#
# The first run builds the libraries and their dependencies (swift-crypto, ZIPFoundation, ...)
# from scratch in its own build folder: about 15 minutes on 2 busy cores, so it is not part of
# scripts/test.sh. Set MEDSYNTH_CONSUMER_DIR to keep the folder and rebuild incrementally.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${MEDSYNTH_CONSUMER_DIR:-$(mktemp -d /tmp/medsynth-consumer.XXXXXX)}"
# A path dependency's identity is its folder's name (e.g. "medsynth", or a worktree's name).
identity="$(basename "$root" | tr '[:upper:]' '[:lower:]')"
mkdir -p "$work/Sources/Consumer"
cat > "$work/Package.swift" <<EOF
// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "Consumer",
    platforms: [.macOS(.v14)],
    dependencies: [.package(path: "$root")],
    targets: [
        .executableTarget(name: "Consumer", dependencies: [
            .product(name: "GAN", package: "$identity"),
            .product(name: "Classification", package: "$identity"),
        ]),
    ]
)
EOF
cat > "$work/Sources/Consumer/main.swift" <<'EOF'
import Classification
import GAN

// Builds a DCGAN and a classifier configuration: enough to link both libraries.
let gan = try DCGANConfig(imageSize: 28, channels: 1, generatorWidth: 4, discriminatorWidth: 4)
let classifier = try ClassifierConfig(arch: .paperCNN, imageSize: 28, channels: 1, classes: 2)
print("consumer: DCGAN \(gan.imageSize) px, classifier \(classifier.arch.rawValue)")
EOF
# The same dependency versions as MedSynth's own build.
[ -f "$root/Package.resolved" ] && cp "$root/Package.resolved" "$work/Package.resolved"
cd "$work"
env -u MEDSYNTH_NATIVE swift build --product Consumer
env -u MEDSYNTH_NATIVE swift run --skip-build Consumer
echo "consumer-check: a package depending on GAN and Classification by path builds and runs ($work)"
