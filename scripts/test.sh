#!/usr/bin/env bash
# The test suite: set up (if needed) and run every test. Needs ../shared/fixtures beside the
# checkout (or STYLESCOPE_FIXTURES). wgpu tests run on Mesa's lavapipe when there is no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup-debian.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/stylescope-target}"
exec cargo test "$@"
