#!/usr/bin/env bash
# MHA vs DIFF vs GDA at the same width (d_model 64, 2 layers, 4 heads; DIFF has +0.2% and GDA
# -3.4% of MHA's parameters) on
# Moby Dick, 600 steps, 3 seeds each: the sweep of configs/experiment/attention_ablation.yaml
# (one job at a time), summarized against MHA (mean ± std, 95% CI, Δ and Welch's p).
#   experiments/attention_ablation/run.sh [sweep dir, default runs/attention_ablation]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
bin="${ATTNLAB_BIN:-$repo/build/attnlab}"
dir="${1:-runs/attention_ablation}"
start=$(date +%s)
"$bin" train -m experiment=attention_ablation trainer.max_steps=600 trainer.eval_every=200 \
  trainer.checkpoint_every=600 trainer.progress=plain launcher.parallel=1 run.sweep_dir="$dir"
"$bin" summarize "$dir" baseline=attention=mha > /dev/null
echo "sweep and summary took $(( $(date +%s) - start )) s"
cat "$dir/summary.md"
