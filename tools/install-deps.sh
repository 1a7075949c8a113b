#!/usr/bin/env bash
# Installs the Debian 12 packages loom needs to build and test, when they are missing.
# Runs apt-get only as root; otherwise prints the command to run.
set -euo pipefail
PKGS=(
  build-essential pkg-config
  libpcre2-dev        # tokenizer pre-tokenizer regex (Unicode classes)
  libjansson-dev      # JSON output and JSONL input
  libturbojpeg0-dev   # JPEG decoding (TurboJPEG API)
  libpng-dev          # PNG decoding
  libwebp-dev         # WebP decoding
  libavformat-dev libavcodec-dev libavutil-dev libswscale-dev  # video
  libcriterion-dev    # unit tests
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PKGS[@]} Debian packages present"
  exit 0
fi
echo "deps: missing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: not root; install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends "${missing[@]}" || { apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; }
