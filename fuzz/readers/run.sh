#!/usr/bin/env bash
# fuzz/readers/run.sh BINARY SECONDS [SKIP_REASON]: a short libFuzzer run of the readers target
# over its seed corpus (fuzz/run_target.sh). Leak checking is off: LibTorch keeps
# process-lifetime allocations. -rss_limit_mb catches an input that makes a reader allocate far
# more than its size.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1" \
  exec "$here/../run_target.sh" readers "$1" "$2" "${3:-}" "$here/corpus" -rss_limit_mb=4096 \
  -max_len=65536
