#!/usr/bin/env bash
# The test suite: set up (system libraries, no release build needed), lint (a few seconds), then
# swift test. scripts/consumer-check.sh (a package depending on GAN and Classification by version)
# takes 5 to 13 minutes from scratch on 2 cores: CI (.ci/run) runs it after this script.
set -euo pipefail
cd "$(dirname "$0")/.."
MEDSYNTH_SKIP_BUILD=1 scripts/setup.sh
scripts/lint.sh
swift test "$@"
