#!/usr/bin/env bash
# Screenshots of the real explorer under Xvfb:
#   scripts/screenshots.sh NAME [stylescope args...]     e.g. NAME --network ../shared/fixtures/sg3t_64.pkl
# writes screenshots/NAME.png once the first frame is on screen (the app saves its own window
# through eframe's screenshot command, then closes). VIEW=file.ron starts from a saved view (any
# file written by "Save view…") instead of the defaults; the user's own settings are not touched.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: scripts/screenshots.sh NAME [stylescope args...]" >&2; exit 2; }
name="$1"
shift
source scripts/setup-debian.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/stylescope-target}"
cargo build --release --quiet   # the build scripts/stylescope.sh makes
cfg="$(mktemp -d)"
trap 'rm -rf "$cfg"' EXIT
mkdir -p "$cfg/stylescope" screenshots
if [ -n "${VIEW:-}" ]; then
  cp "$VIEW" "$cfg/stylescope/state.ron"
fi
export XDG_RUNTIME_DIR="$cfg/run"
mkdir -m 700 -p "$XDG_RUNTIME_DIR"
XDG_CONFIG_HOME="$cfg" STYLESCOPE_SCREENSHOT="$PWD/screenshots/$name.png" timeout 600 \
  xvfb-run -a -s "-screen 0 1600x1000x24" "$CARGO_TARGET_DIR/release/stylescope" "$@"
test -s "screenshots/$name.png"
echo "screenshots/$name.png"
