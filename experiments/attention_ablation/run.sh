#!/usr/bin/env bash
# MHA vs DIFF vs GDA at the same width (d_model 64, 2 layers, 4 heads; DIFF has +0.2% and GDA
# -3.4% of MHA's parameters) on Moby Dick, 600 steps, 3 seeds each: the sweep of
# configs/experiment/attention_ablation.yaml (one job at a time), summarized against MHA (mean ± std, 95% CI, Δ and Welch's p).
#   experiments/attention_ablation/run.sh [sweep dir, default runs/attention_ablation]
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/../sweep_ablation.sh" attention_ablation attention=mha \
  "${1:-runs/attention_ablation}"
