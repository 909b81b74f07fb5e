#!/usr/bin/env bash
# fuzz/config/run.sh BINARY SECONDS [SKIP_REASON]: a short libFuzzer run of the config target
# over its seed corpus with the YAML/override dictionary (fuzz/run_target.sh). A finding (crash,
# sanitizer report, non-UserError, input running over 5 s) fails the test.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "$here/../run_target.sh" config "$1" "$2" "${3:-}" "$here/corpus" -dict="$here/config.dict" \
  -rss_limit_mb=2048 -max_len=4096
