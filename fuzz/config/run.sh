#!/usr/bin/env bash
# fuzz/config/run.sh BINARY SECONDS [SKIP_REASON]: a short libFuzzer run of the config target
# over a scratch copy of the seed corpus (the repository's corpus stays as committed), with the
# YAML/override dictionary. Exit 77 (ctest's skip) with the reason printed when the target could
# not be built here. A finding (crash, sanitizer report, non-UserError, input running over 5 s)
# fails the test; the input is kept under $ATTNLAB_FUZZ_ARTIFACTS (default /tmp).
set -euo pipefail
binary="$1"
seconds="$2"
skip_reason="${3:-}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ -n "$skip_reason" ]]; then
  echo "fuzz_config skipped: $skip_reason"
  exit 77
fi
if [[ ! -x "$binary" ]]; then
  echo "fuzz_config skipped: $binary was not built"
  exit 77
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/attnlab_fuzz_config.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cp -r "$here/corpus" "$work/corpus"
set +e
"$binary" "$work/corpus" -dict="$here/config.dict" -max_total_time="$seconds" -timeout=5 \
  -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 -artifact_prefix="$work/" \
  > "$work/log" 2>&1
status=$?
set -e
tail -n 40 "$work/log"
if [[ "$status" -ne 0 ]]; then
  for finding in "$work"/crash-* "$work"/timeout-* "$work"/oom-* "$work"/leak-*; do
    [[ -e "$finding" ]] || continue
    mkdir -p "${ATTNLAB_FUZZ_ARTIFACTS:-/tmp}"
    cp "$finding" "${ATTNLAB_FUZZ_ARTIFACTS:-/tmp}/config-$(basename "$finding")"
    echo "kept ${ATTNLAB_FUZZ_ARTIFACTS:-/tmp}/config-$(basename "$finding")"
  done
fi
exit "$status"
