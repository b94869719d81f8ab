#!/usr/bin/env bash
# The test suite: set up (system libraries, no release build needed), lint (a few seconds), then
# swift test. scripts/consumer-check.sh (a package depending on GAN and Classification by path)
# takes about 15 minutes from scratch and is run separately.
set -euo pipefail
cd "$(dirname "$0")/.."
MEDSYNTH_SKIP_BUILD=1 scripts/setup.sh
scripts/lint.sh
swift test "$@"
