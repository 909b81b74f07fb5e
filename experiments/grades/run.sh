#!/usr/bin/env bash
# GradES (per-matrix gradient early stopping, issue #18) on a fine-tune: pre-trains the default
# GPT on Moby Dick for 300 steps (128-token windows), then runs the sweep of
# configs/experiment/grades_finetune.yaml (no GradES / tau 2e-4 / tau 5e-4, 3 seeds, 200 steps on
# SOTU, one job at a time) and `attnlab summarize` with no GradES as the baseline.
#   experiments/grades/run.sh [work dir, default runs/grades]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
bin="${ATTNLAB_BIN:-$repo/build/attnlab}"
root="${1:-runs/grades}"
start=$(date +%s)
"$bin" train run.dir="$root/pretrain" data=moby_dick scheduler=constant data.seq_len=128 \
  trainer.max_steps=300 trainer.eval_every=300 trainer.checkpoint_every=300 trainer.progress=none
"$bin" train -m experiment=grades_finetune init_from="$root/pretrain" trainer.progress=plain \
  launcher.parallel=1 run.sweep_dir="$root/finetune"
"$bin" summarize "$root/finetune" \
  'baseline=trainer.grades.enabled=false trainer.grades.tau=2.0e-4' > /dev/null
echo "took $(( $(date +%s) - start )) s"
cat "$root/finetune/summary.md"
grep -h "GradES" "$root"/finetune/*/job.log | sed 's/,.*//' | sort | uniq -c | head -20 || true
