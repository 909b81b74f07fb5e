#!/usr/bin/env bash
# Decorrelation (attention-sink) loss on the default LM (byte-level GPT, d_model 128, 4 layers,
# 4 heads, T 256, batch 16 on Moby Dick), shortened to 250 steps (warmup 25, eval every 50 on 10
# batches), one thread, seed 1337, two runs:
#   baseline: loss.terms = cross_entropy + decorrelation with weight 0 — the term only measures
#             (its stat/bos_cos and stat/max_act per block), it adds 0 to the loss and gradient;
#   decorr:   loss=decorrelation (cross_entropy + 1.0 * decorrelation, factor 1, blocks 0..2).
# "BOS" is position 0 of each training window (random offsets into the byte stream), the
# position causal attention sinks on. plot.py draws the curves (decorrelation.png) and writes the
# table (results.md) into experiments/decorrelation/.
#   experiments/decorrelation/run.sh [run root, default runs/decorrelation]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
bin="${ATTNLAB_BIN:-$repo/build/attnlab}"
python="${ATTNLAB_PYTHON:-$repo/.venv/bin/python}"  # the project environment (scripts/setup.sh)
root="${1:-runs/decorrelation}"
results="${RESULTS_DIR:-experiments/decorrelation}"  # run_all.sh --quick writes elsewhere
common=(trainer.threads=1 trainer.progress=plain trainer.max_steps=250 trainer.eval_every=50
        trainer.eval_batches=10 trainer.log_every=10 trainer.checkpoint_every=250
        scheduler.warmup_steps=25 seed=1337)

start=$(date +%s)
"$bin" train "${common[@]}" run.dir="$root/baseline" \
  'loss.terms=[{name: cross_entropy, weight: 1.0}, {name: decorrelation, weight: 0.0}]'
"$bin" train "${common[@]}" run.dir="$root/decorr" loss=decorrelation
mkdir -p "$results"
"$python" experiments/decorrelation/plot.py "$root/baseline" "$root/decorr" \
  --out "$results" --seconds $(( $(date +%s) - start ))
cat "$results/results.md"
