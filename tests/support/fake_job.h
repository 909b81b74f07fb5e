// A stand-in for `attnlab train` in launcher tests: a bash program that reads run.dir, lr and
// seed from its key=value arguments and writes result.json and metrics.jsonl like the trainer.
#pragma once

namespace attnlab::testing {

// val_loss = 10*lr + seed; lr=bad exits 3 without a result. Counts launches in $dir/../launches
// and the number of jobs running at once (files in ../running) after a short sleep.
inline const char* kFakeJob = R"SH(#!/bin/bash
for a in "$@"; do
  case "$a" in
    run.dir=*) dir="${a#run.dir=}" ;;
    lr=*) lr="${a#lr=}" ;;
    seed=*) seed="${a#seed=}" ;;
  esac
done
sweep="$(dirname "$dir")"
echo "$*" >> "$sweep/launches"
mkdir -p "$sweep/running"
touch "$sweep/running/$$"
sleep 0.6
concurrent=$(ls "$sweep/running" | wc -l)
rm -f "$sweep/running/$$"
echo "$concurrent" >> "$sweep/concurrency"
[ "$lr" = "bad" ] && exit 3
val=$(awk "BEGIN{print 10*$lr + $seed}")
echo "{\"step\": 1, \"val/loss\": $(awk "BEGIN{print $val + 1}")}" > "$dir/metrics.jsonl"
echo "{\"step\": 2, \"val/loss\": $val}" >> "$dir/metrics.jsonl"
echo "{\"run_dir\": \"$dir\", \"step\": 2, \"val_loss\": $val}" > "$dir/result.json"
)SH";

}  // namespace attnlab::testing
