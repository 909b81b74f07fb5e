#!/usr/bin/env bash
# MoH vs MHA (issue #18): the sweep of configs/experiment/moh_ablation.yaml (MHA with 8 heads vs
# MoH using 6 of the same 8 heads per token: 4 shared + top-2 of 4 routed, the learned router,
# sparse compute), d_model 64, 2 layers, Moby Dick, 600 steps, 3 seeds, one job at a time,
# summarized against MHA (mean ± std, 95% CI, Δ and Welch's p; tokens/s and parameter counts).
#   experiments/moh_ablation/run.sh [sweep dir, default runs/moh_ablation]
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/../sweep_ablation.sh" moh_ablation attention=mha \
  "${1:-runs/moh_ablation}"
