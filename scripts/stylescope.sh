#!/usr/bin/env bash
# The main job: set up (if needed), build, and open the StyleScope explorer. Arguments are passed
# to `stylescope`, e.g. `scripts/stylescope.sh --network model.pkl` or `scripts/stylescope.sh gen ...`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup-debian.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/stylescope-target}"
exec cargo run --release --quiet -- "$@"
