#!/usr/bin/env bash
# Decorrelation (attention-sink) loss on the default LM (byte-level GPT, d_model 128, 4 layers,
# 4 heads, T 256, batch 16 on Moby Dick), shortened to 250 steps (warmup 25, eval every 50 on 10
# batches), one thread per run, two runs per seed (SEEDS, default 1337 1 2; the two runs of a seed
# train side by side):
#   baseline: loss.terms = cross_entropy + decorrelation with weight 0 — the term only measures
#             (its stat/bos_cos and stat/max_act per block), it adds 0 to the loss and gradient;
#   decorr:   loss=decorrelation (cross_entropy + 1.0 * decorrelation, factor 1, blocks 0..2).
# "BOS" is position 0 of each training window (random offsets into the byte stream), the
# position causal attention sinks on. plot.py draws the curves of the first seed
# (decorrelation.png) and writes the table (results.md: the first seed's runs, then every seed's
# paired difference with its mean, 95% CI and paired t-test) into experiments/decorrelation/.
#   experiments/decorrelation/run.sh [run root, default runs/decorrelation]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
bin="${ATTNLAB_BIN:-$repo/build/attnlab}"
python="${ATTNLAB_PYTHON:-$repo/.venv/bin/python}"  # the project environment (scripts/setup.sh)
root="${1:-runs/decorrelation}"
mkdir -p "$(dirname "$root")"
results="${RESULTS_DIR:-experiments/decorrelation}"  # run_all.sh --quick writes elsewhere
common=(trainer.threads=1 trainer.progress=plain trainer.max_steps=250 trainer.eval_every=50
        trainer.eval_batches=10 trainer.log_every=10 trainer.checkpoint_every=250
        scheduler.warmup_steps=25)
read -r -a seeds <<< "${SEEDS:-1337 1 2}"

start=$(date +%s)
pairs=()
for seed in "${seeds[@]}"; do
  suffix=$([[ "$seed" == "${seeds[0]}" ]] && echo "" || echo "_s$seed")
  "$bin" train "${common[@]}" seed="$seed" run.dir="$root/baseline$suffix" \
    'loss.terms=[{name: cross_entropy, weight: 1.0}, {name: decorrelation, weight: 0.0}]' \
    > "$root.baseline$suffix.log" 2>&1 &
  baseline=$!
  "$bin" train "${common[@]}" seed="$seed" run.dir="$root/decorr$suffix" loss=decorrelation \
    > "$root.decorr$suffix.log" 2>&1 &
  decorr=$!
  wait "$baseline" || { tail -20 "$root.baseline$suffix.log"; exit 1; }
  wait "$decorr" || { tail -20 "$root.decorr$suffix.log"; exit 1; }
  pairs+=("$root/baseline$suffix" "$root/decorr$suffix")
done
mkdir -p "$results"
"$python" experiments/decorrelation/plot.py "${pairs[@]}" --seeds "${seeds[@]}" \
  --out "$results" --seconds $(( $(date +%s) - start ))
cat "$results/results.md"
