#!/usr/bin/env bash
# One ablation sweep written in a config file, run and summarized: the `sweep:` block of
# configs/experiment/<EXPERIMENT>.yaml at 600 steps (eval every 200), one job at a time, then
# `attnlab summarize` against the BASELINE row (mean ± std, 95% CI, Δ and Welch's p).
#   experiments/sweep_ablation.sh EXPERIMENT BASELINE SWEEP_DIR [OVERRIDES...]
# OVERRIDES go to every job (e.g. a larger model). Used by experiments/attention_ablation/run.sh,
# run_larger.sh and experiments/moh_ablation/run.sh.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bin="${ATTNLAB_BIN:-$repo/build/attnlab}"
experiment="$1" baseline="$2" dir="$3"
shift 3
start=$(date +%s)
"$bin" train -m experiment="$experiment" trainer.max_steps=600 trainer.eval_every=200 \
  trainer.checkpoint_every=600 trainer.progress=plain launcher.parallel=1 run.sweep_dir="$dir" "$@"
"$bin" summarize "$dir" baseline="$baseline" > /dev/null
echo "sweep and summary took $(( $(date +%s) - start )) s"
cat "$dir/summary.md"
