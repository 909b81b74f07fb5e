#!/usr/bin/env bash
# fuzz/run_target.sh NAME BINARY SECONDS SKIP_REASON CORPUS [LIBFUZZER FLAGS...]: a short
# libFuzzer run of one target (fuzz/<NAME>/run.sh calls it with its own corpus and flags) over a
# scratch copy of CORPUS, so the repository's corpus stays as committed. Exit 77 (ctest's skip)
# with the reason printed when the target could not be built here. A finding (crash, sanitizer
# report, timeout, OOM) fails the test; the input is kept as $ATTNLAB_FUZZ_ARTIFACTS/<NAME>-<file>
# (default /tmp).
set -euo pipefail
name="$1" binary="$2" seconds="$3" skip_reason="$4" corpus="$5"
shift 5
if [[ -n "$skip_reason" ]]; then
  echo "fuzz_$name skipped: $skip_reason"
  exit 77
fi
if [[ ! -x "$binary" ]]; then
  echo "fuzz_$name skipped: $binary was not built"
  exit 77
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/attnlab_fuzz_$name.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/corpus"
cp -r "$corpus/." "$work/corpus/"
set +e
"$binary" "$work/corpus" -max_total_time="$seconds" -timeout=5 -print_final_stats=1 \
  -artifact_prefix="$work/" "$@" > "$work/log" 2>&1
status=$?
set -e
tail -n 40 "$work/log"
if [[ "$status" -ne 0 ]]; then
  artifacts="${ATTNLAB_FUZZ_ARTIFACTS:-/tmp}"
  for finding in "$work"/crash-* "$work"/timeout-* "$work"/oom-* "$work"/leak-*; do
    [[ -e "$finding" ]] || continue
    mkdir -p "$artifacts"
    cp "$finding" "$artifacts/$name-$(basename "$finding")"
    echo "kept $artifacts/$name-$(basename "$finding")"
  done
fi
exit "$status"
