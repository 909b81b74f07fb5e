#!/usr/bin/env bash
# fuzz/readers/run.sh BINARY SECONDS [SKIP_REASON]: a short libFuzzer run of the readers target
# over a scratch copy of the seed corpus (the repository's corpus stays as committed). Exit 77
# (ctest's skip) with the reason printed when the target could not be built here.
set -euo pipefail
binary="$1"
seconds="$2"
skip_reason="${3:-}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ -n "$skip_reason" ]]; then
  echo "fuzz_readers skipped: $skip_reason"
  exit 77
fi
if [[ ! -x "$binary" ]]; then
  echo "fuzz_readers skipped: $binary was not built"
  exit 77
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/attnlab_fuzz_readers.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus"
cp -r "$here/corpus/." "$work/corpus/"
# Leak checking is off: LibTorch keeps process-lifetime allocations. -rss_limit_mb catches an
# input that makes a reader allocate far more than its size.
ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1" \
  "$binary" "$work/corpus" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=4096 \
  -max_len=65536 -print_final_stats=1 -artifact_prefix="$work/" 2>&1 | tail -n 40
status="${PIPESTATUS[0]}"
if [[ "$status" -ne 0 ]]; then
  for crash in "$work"/crash-* "$work"/timeout-* "$work"/oom-*; do
    [[ -e "$crash" ]] || continue
    mkdir -p "${ATTNLAB_FUZZ_ARTIFACTS:-/tmp}"
    cp "$crash" "${ATTNLAB_FUZZ_ARTIFACTS:-/tmp}/" && echo "kept ${ATTNLAB_FUZZ_ARTIFACTS:-/tmp}/$(basename "$crash")"
  done
fi
exit "$status"
