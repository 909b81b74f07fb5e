#!/usr/bin/env bash
# MHA vs DIFF vs GDA at a larger size than run.sh: d_model 128, 4 layers, 4 heads (about 4x the
# parameters), the same data, windows, batch, LR, 600 steps and 3 seeds, summarized against MHA
# (mean ± std, 95% CI, Δ and Welch's p). About half an hour on 2 cores.
#   experiments/attention_ablation/run_larger.sh [sweep dir, default runs/attention_ablation_larger]
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/../sweep_ablation.sh" attention_ablation attention=mha \
  "${1:-runs/attention_ablation_larger}" model.d_model=128 model.n_layers=4 model.n_heads=4
