#!/usr/bin/env bash
# The test suite: set up (system libraries, no release build needed), then swift test.
set -euo pipefail
cd "$(dirname "$0")/.."
MEDSYNTH_SKIP_BUILD=1 scripts/setup.sh
swift test "$@"
