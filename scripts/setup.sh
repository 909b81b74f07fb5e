#!/usr/bin/env bash
# One-command setup on a fresh Debian 12 machine, called by both README commands:
#   1. installs the missing Debian packages (one `apt-get update` at most);
#   2. creates the project's Python environment (.venv, git-ignored) with the pinned PyTorch 2.11.0
#      and a CUDA 13.0 toolkit from NVIDIA's PyPI wheels (scripts/requirements.txt);
#   3. configures and builds attnlab into build/ against that LibTorch, including the operator
#      library of the `attnlab` Python package, which it puts on the environment's path.
# Idempotent: with everything installed and built, a second run takes seconds.
#   scripts/setup.sh                     install + build everything
#   BUILD_DIR=dir scripts/setup.sh       build elsewhere
#   ATTNLAB_VENV=dir scripts/setup.sh    keep the Python environment elsewhere
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${BUILD_DIR:-$repo/build}
venv=${ATTNLAB_VENV:-$repo/.venv}

# Debian packages attnlab builds and tests with. LibTorch itself comes from PyPI (below), not
# from Debian. libgloo-dev: the gloo headers that LibTorch's c10d/ProcessGroupGloo.hpp includes
# (the wheel ships gloo compiled in, not its headers). libsentencepiece-dev: tokenizer=bpe trains
# and encodes in process. clang + libclang-rt-14-dev: the libFuzzer targets under fuzz/, whose
# short runs are part of the test suite.
packages=(build-essential cmake ccache pkg-config git libyaml-cpp-dev libopenmpi-dev openmpi-bin
  libgtest-dev libcli11-dev nlohmann-json3-dev zlib1g-dev libgloo-dev libsentencepiece-dev
  sentencepiece clang libclang-rt-14-dev libpcre2-dev)
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

# The Python environment: re-installed only when scripts/requirements.txt changes.
requirements="$repo/scripts/requirements.txt"
stamp="$venv/.attnlab-requirements.sha256"
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  python=${ATTNLAB_BASE_PYTHON:-python3}
  "$python" -c 'import sys; assert sys.version_info >= (3, 10), sys.version' ||
    { echo "setup: $python is older than 3.10; set ATTNLAB_BASE_PYTHON" >&2; exit 2; }
  echo "setup: creating $venv (torch 2.11.0 + CUDA 13.0 toolkit wheels, ~5 GB)"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip > /dev/null
  "$venv/bin/python" -m pip install -q -r "$requirements"
  echo "$want" > "$stamp"
fi

# NVIDIA's wheels lay the toolkit out under site-packages/nvidia/cu13 but without the unversioned
# library names and the lib64 folder that nvcc.profile, FindCUDA and FindCUDAToolkit look for.
# Add them (symbolic links inside the environment; nothing outside it changes).
cuda_root=$("$venv/bin/python" -c 'import nvidia, os; print(os.path.join(nvidia.__path__[0], "cu13"))')
[ -e "$cuda_root/lib64" ] || ln -s lib "$cuda_root/lib64"
for lib in "$cuda_root"/lib/lib*.so.*; do
  base=${lib%%.so.*}
  [ -e "$base.so" ] || ln -s "$(basename "$lib")" "$base.so"
done

# `import attnlab` (docs/python.md): a .pth file puts this checkout's python/ on the environment's
# path, and the package loads the operator library that the build below makes
# (build/python/attnlab/). Skipped when attnlab was pip-installed into the environment
# (pip install --no-build-isolation -e ., pyproject.toml), which then takes precedence.
if ! "$venv/bin/python" -c 'import importlib.metadata as m; m.version("attnlab")' 2> /dev/null; then
  site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  [ "$(cat "$site/attnlab-checkout.pth" 2>/dev/null)" = "$repo/python" ] ||
    echo "$repo/python" > "$site/attnlab-checkout.pth"
fi

if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  # LibTorch's CMake config prints warnings that do not apply (CUDA architectures, kineto):
  # the output goes to a log, shown only when configuring fails.
  mkdir -p "$build_dir"
  cmake -S "$repo" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DATTNLAB_PYTHON="$venv/bin/python" \
    > "$build_dir/configure.log" 2>&1 || { cat "$build_dir/configure.log"; exit 1; }
fi
cmake --build "$build_dir" -j "$(nproc)" 2>&1 | grep -E "error|warning: unused|Error" || true
# Fail loudly when the build did not produce the executable (the grep above hides progress).
cmake --build "$build_dir" -j "$(nproc)" > /dev/null
echo "setup: built $build_dir/attnlab"
if [ "$build_dir" != "$repo/build" ]; then
  echo "setup: for import attnlab, set ATTNLAB_OPS_LIBRARY=$(ls "$build_dir"/python/attnlab/_C*.so)"
fi
