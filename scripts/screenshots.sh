#!/usr/bin/env bash
# Screenshots of the real explorer under Xvfb:
#   scripts/screenshots.sh NAME [stylescope args...]     e.g. NAME --network ../shared/fixtures/sg3t_64.pkl
# writes screenshots/NAME.png once the first frame is on screen (the app saves its own window
# through eframe's screenshot command, then closes). VIEW=file.ron starts from a saved view (any
# file written by "Save view…") instead of the defaults; the user's own settings are not touched.
# STYLESCOPE=path/to/stylescope uses that binary instead of building the release one.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: scripts/screenshots.sh NAME [stylescope args...]" >&2; exit 2; }
name="$1"
shift
source scripts/setup-debian.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/stylescope-target}"
if [ -n "${STYLESCOPE:-}" ]; then
  bin="$STYLESCOPE"
else
  cargo build --release --quiet   # the build scripts/stylescope.sh makes
  bin="$CARGO_TARGET_DIR/release/stylescope"
fi
cfg="$(mktemp -d)"
trap 'rm -rf "$cfg"' EXIT
mkdir -p "$cfg/stylescope" screenshots
if [ -n "${VIEW:-}" ]; then
  cp "$VIEW" "$cfg/stylescope/state.ron"
fi
export XDG_RUNTIME_DIR="$cfg/run"
mkdir -m 700 -p "$XDG_RUNTIME_DIR"
XDG_CONFIG_HOME="$cfg" STYLESCOPE_SCREENSHOT="$PWD/screenshots/$name.png" timeout 600 \
  xvfb-run -a -s "-screen 0 1600x1000x24" "$bin" "$@"
test -s "screenshots/$name.png"
echo "screenshots/$name.png"
