#!/usr/bin/env bash
# Dataset Decomposition vs concat-and-chunk (issue #18): the sweep of
# configs/experiment/dataset_decomposition.yaml (3 samplers x 3 seeds, 300 steps of 8 x 256
# tokens each, one thread per job, one job at a time), then `attnlab summarize` against the random
# concat-and-chunk sampler as the baseline, which writes summary.md (mean ± std, 95% CI, Δ and
# Welch's p of the final val loss on 256-token windows, tokens/s) and summary.png.
#   experiments/dataset_decomposition/run.sh [sweep dir, default runs/dataset_decomposition]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
bin="${ATTNLAB_BIN:-$repo/build/attnlab}"
dir="${1:-runs/dataset_decomposition}"
start=$(date +%s)
"$bin" train -m experiment=dataset_decomposition trainer.progress=plain launcher.parallel=1 \
  run.sweep_dir="$dir"
"$bin" summarize "$dir" \
  'baseline=data.sampler=random data.decomposition.curriculum=short_to_long' > /dev/null
echo "sweep and summary took $(( $(date +%s) - start )) s"
cat "$dir/summary.md"
