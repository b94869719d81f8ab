#!/usr/bin/env bash
# PairedBootstrap coverage over many simulated experiments (release build of the Evaluation
# sources with the tests' simulation). Usage: scripts/calibration-coverage.sh [experiments] [image sds] [methods]
# e.g. scripts/calibration-coverage.sh 1000 0,1,2,3,4 new   (about 5 s per row)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
cp Sources/Evaluation/*.swift "$dir"/
grep -v '@testable import' Tests/EvaluationTests/Simulation.swift > "$dir"/Simulation.swift
cp scripts/calibration-coverage.swift "$dir"/main.swift
swiftc -O -module-name CalibrationCoverage "$dir"/*.swift -o "$dir"/coverage
"$dir"/coverage "$@"
rm -rf "$dir"
