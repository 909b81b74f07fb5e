#!/usr/bin/env bash
# One-command setup on a fresh Debian 12 machine: installs the missing Debian packages (one
# `apt-get update` at most), then configures and builds attnlab into build/. Idempotent: with
# everything installed and built, a second run takes seconds.
#   scripts/setup.sh            install + build everything
#   BUILD_DIR=dir scripts/setup.sh   build elsewhere
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${BUILD_DIR:-$repo/build}

# Debian packages attnlab builds and tests with. libopenblas0-pthread matters: with Debian's
# default reference BLAS, LibTorch matmuls are ~25x slower. libgloo-dev: the gloo headers that
# LibTorch's c10d/ProcessGroupGloo.hpp includes (dist.backend=gloo).
packages=(build-essential cmake ccache pkg-config git libtorch-dev libopenblas0-pthread
  libyaml-cpp-dev libopenmpi-dev openmpi-bin libgtest-dev sentencepiece libcli11-dev
  nlohmann-json3-dev zlib1g-dev python3-torch python3-matplotlib libgloo-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm ships with the nodejs package here; `apt-get install npm` conflicts with it, so only ask
# for npm when no npm exists at all.
command -v npm > /dev/null || { command -v node > /dev/null || missing+=(nodejs); missing+=(npm); }
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" > /dev/null
fi

if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  cmake -S "$repo" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release > /dev/null
fi
cmake --build "$build_dir" -j "$(nproc)" 2>&1 | grep -E "error|warning: unused|Error" || true
# Fail loudly when the build did not produce the executable (the grep above hides progress).
cmake --build "$build_dir" -j "$(nproc)" > /dev/null
echo "setup: built $build_dir/attnlab"
