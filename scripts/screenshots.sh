#!/usr/bin/env bash
# Takes the README screenshots from the real app under Xvfb: opens StyleScope on a fixture
# network, waits for the first frames, and grabs the whole screen with ImageMagick's `import`.
# Usage: scripts/screenshots.sh NAME [stylescope args...]   → screenshots/NAME.png
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1; shift
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/stylescope-target}"
bin="$CARGO_TARGET_DIR/debug/stylescope"
[ -x "$bin" ] || cargo build --quiet
command -v import >/dev/null || { echo "needs ImageMagick (apt-get install imagemagick)" >&2; exit 1; }
display=:${SCREENSHOT_DISPLAY:-57}
Xvfb "$display" -screen 0 1400x900x24 -ac >/dev/null 2>&1 &
xvfb=$!
trap 'kill $app $xvfb 2>/dev/null || true' EXIT
sleep 1
export XDG_CONFIG_HOME="${XDG_CONFIG_HOME:-$(mktemp -d)}"
DISPLAY=$display "$bin" "$@" >/dev/null 2>&1 &
app=$!
sleep "${SCREENSHOT_WAIT:-25}"
mkdir -p screenshots
import -display "$display" -window root "screenshots/$name.png"
echo "screenshots/$name.png"
