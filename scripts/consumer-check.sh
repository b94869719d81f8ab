#!/usr/bin/env bash
# Builds a tiny package that depends on MedSynth's GAN and Classification libraries the way
# another project would: the libraries must stay usable as dependencies. SwiftPM refuses a
# version-based dependency whose manifest adds unsafeFlags (a path or branch dependency would
# not show it), which is why MEDSYNTH_NATIVE is opt-in. So the check copies this working tree
# (tracked and untracked files, not ignored ones) into a scratch git repository tagged 1.0.0
# and depends on it by version through a file:// URL.
#
# From scratch it builds the libraries and their dependencies (swift-crypto, ZIPFoundation, ...):
# 5 minutes on 2 idle cores, 13 on busy ones, so it is not part of scripts/test.sh. Set MEDSYNTH_CONSUMER_DIR to
# keep the folder and rebuild incrementally.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="${MEDSYNTH_CONSUMER_DIR:-$(mktemp -d /tmp/medsynth-consumer.XXXXXX)}"
mkdir -p "$work"
work="$(cd "$work" && pwd)"

# The package as a release: this working tree, committed and tagged in a scratch repository.
# NOTE: a new folder per run, so that no cached clone of an earlier run's 1.0.0 is reused (the
# folder's name, medsynth, is the package's identity).
rm -rf "$work"/release-*
release="$work/release-$(date +%s)/medsynth"
mkdir -p "$release"
(cd "$root" && git ls-files -z --cached --others --exclude-standard) |
    (cd "$root" && xargs -0 cp --parents -t "$release" 2>/dev/null || true)
git -C "$release" init -q
git -C "$release" add -A
git -C "$release" -c user.name=consumer-check -c user.email=consumer-check@localhost commit -q -m "consumer check"
git -C "$release" tag 1.0.0

mkdir -p "$work/consumer/Sources/Consumer"
cat > "$work/consumer/Package.swift" <<EOF
// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "Consumer",
    platforms: [.macOS(.v14)],
    dependencies: [.package(url: "file://$release", from: "1.0.0")],
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
