#!/usr/bin/env bash
# Installs what StyleScope needs on a fresh Debian/Ubuntu machine, only where missing:
# a Rust toolchain (rustup), Mesa's software Vulkan (lavapipe) so wgpu runs without a GPU, the X11
# client libraries eframe loads at run time, Xvfb for headless screenshots, and a C/C++ compiler
# (Cisco's H.264 encoder for MP4 export builds from source).
set -euo pipefail

packages=(mesa-vulkan-drivers libvulkan1 xvfb xauth libxkbcommon-x11-0 libx11-xcb1 libxcursor1 libxrandr2 libxi6 libgl1 pkg-config gcc g++)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing system packages: ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q >&2 || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}" >&2
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "installing the Rust toolchain (rustup)" >&2
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >&2
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi
