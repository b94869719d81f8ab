#!/usr/bin/env bash
# Builds a tiny package that depends on MedSynth's GAN and Classification libraries the way
# another project would: the libraries must stay usable as dependencies. SwiftPM refuses a
# version-based dependency whose manifest adds unsafeFlags (a path or branch dependency would
# not show it), which is why MEDSYNTH_NATIVE is opt-in. So the check copies this working tree
# (tracked and untracked files, not ignored ones) into a scratch git repository tagged 1.0.0
# and depends on it by version through a file:// URL.
#
# From scratch it builds the libraries and their dependencies (swift-crypto, ZIPFoundation, ...):
# about 5 minutes on 2 cores, so it is not part of scripts/test.sh. Set MEDSYNTH_CONSUMER_DIR to
# keep the folder and rebuild incrementally.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${MEDSYNTH_CONSUMER_DIR:-$(mktemp -d /tmp/medsynth-consumer.XXXXXX)}"
mkdir -p "$work"
work="$(cd "$work" && pwd)"

# The package as a release: this working tree, committed and tagged in a scratch repository.
rm -rf "$work/medsynth"
mkdir -p "$work/medsynth"
(cd "$root" && git ls-files -z --cached --others --exclude-standard) |
    (cd "$root" && xargs -0 cp --parents -t "$work/medsynth" 2>/dev/null || true)
git -C "$work/medsynth" init -q
git -C "$work/medsynth" add -A
git -C "$work/medsynth" -c user.name=consumer-check -c user.email=consumer-check@localhost commit -q -m "consumer check"
git -C "$work/medsynth" tag 1.0.0

mkdir -p "$work/consumer/Sources/Consumer"
cat > "$work/consumer/Package.swift" <<EOF
// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "Consumer",
    platforms: [.macOS(.v14)],
    dependencies: [.package(url: "file://$work/medsynth", from: "1.0.0")],
    targets: [
        .executableTarget(name: "Consumer", dependencies: [
            .product(name: "GAN", package: "medsynth"),
            .product(name: "Classification", package: "medsynth"),
        ]),
    ]
)
EOF
cat > "$work/consumer/Sources/Consumer/main.swift" <<'EOF'
import Classification
import GAN

// Builds a DCGAN and a classifier configuration: enough to link both libraries.
let gan = try DCGANConfig(imageSize: 28, channels: 1, generatorWidth: 4, discriminatorWidth: 4)
let classifier = try ClassifierConfig(arch: .paperCNN, imageSize: 28, channels: 1, classes: 2)
print("consumer: DCGAN \(gan.imageSize) px, classifier \(classifier.arch.rawValue)")
EOF
cd "$work/consumer"
rm -f Package.resolved
env -u MEDSYNTH_NATIVE swift package update >/dev/null
env -u MEDSYNTH_NATIVE swift build --product Consumer
env -u MEDSYNTH_NATIVE swift run --skip-build Consumer
echo "consumer-check: a package depending on GAN and Classification 1.0.0 builds and runs ($work)"
