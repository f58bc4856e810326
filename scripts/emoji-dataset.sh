#!/usr/bin/env bash
# Builds a training dataset from the Noto emoji (npm package emoji-datasource-google, images
# Apache-2.0): fetches the package with `npm pack`, picks the images of the chosen categories of
# its emoji.json, and runs `stylescope dataset` on them (alpha composited onto white, every image
# RGB, resized to RES x RES).
#
#   scripts/emoji-dataset.sh OUT.zip [RES] [CATEGORY ...]
#   scripts/emoji-dataset.sh smileys32.zip 32 "Smileys & Emotion"          # 169 images
#   scripts/emoji-dataset.sh emoji64.zip 64                                # every category (~1,900)
#
# Set STYLESCOPE to a built binary to skip the build (default: `cargo run --release`).
set -euo pipefail
out=${1:?usage: scripts/emoji-dataset.sh OUT.zip [RES] [CATEGORY ...]}
res=${2:-32}
shift $(( $# < 2 ? $# : 2 ))
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
cd "$(dirname "$0")/.."

command -v npm >/dev/null 2>&1 || { echo "error: npm is needed to fetch emoji-datasource-google (apt-get install npm)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "fetching emoji-datasource-google@16.0.0 from the npm registry" >&2
(cd "$work" && npm pack --silent emoji-datasource-google@16.0.0 >/dev/null && tar xzf emoji-datasource-google-16.0.0.tgz)

# The images of the chosen categories (all when none is given), by emoji.json.
mkdir -p "$work/selected"
node - "$work/package" "$work/selected" "$@" <<'JS'
const fs = require("fs");
const [pkg, dest, ...cats] = process.argv.slice(2);
const emoji = JSON.parse(fs.readFileSync(`${pkg}/emoji.json`, "utf8"));
let n = 0;
for (const e of emoji) {
  if (!e.has_img_google || (cats.length > 0 && !cats.includes(e.category))) continue;
  fs.copyFileSync(`${pkg}/img/google/64/${e.image}`, `${dest}/${e.image}`);
  n++;
}
if (n === 0) {
  const known = [...new Set(emoji.map((e) => e.category))].join(", ");
  console.error(`error: no emoji in the categories ${JSON.stringify(cats)} (known: ${known})`);
  process.exit(1);
}
console.error(`selected ${n} emoji`);
JS

if [ -n "${STYLESCOPE:-}" ]; then
  "$STYLESCOPE" dataset --source "$work/selected" --dest "$out" --resolution "${res}x${res}" --rgb
else
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/stylescope-target}"
  cargo run --release --quiet -- dataset --source "$work/selected" --dest "$out" --resolution "${res}x${res}" --rgb
fi
{
  echo "Images: Noto Emoji (Google), Apache License 2.0: https://github.com/googlefonts/noto-emoji"
  echo "Packaged as the npm package emoji-datasource-google 16.0.0 (emoji-data); the package's own licence:"
  echo
  cat "$work/package/LICENSE"
} > "${out%.zip}.LICENSE.txt"
echo "wrote $out (licence of the images: ${out%.zip}.LICENSE.txt)" >&2
