#!/usr/bin/env bash
# Cross-entropy vs focal loss on SpamAssassin as 3 classes (easy_ham / hard_ham / spam), with the
# classification task's default encoder (d_model 64, 2 layers, 4 heads, byte tokens, 128 per
# e-mail, batch 16, 300 AdamW steps), 3 seeds each:
#   loss=cross_entropy                               (plain, unweighted)
#   loss=focal_auto loss.gamma=0,1,2,5               (alpha: auto = inverse class frequency)
# Two `attnlab train -m` sweeps (15 runs, one at a time on one thread), then `attnlab summarize`
# on each and make_table.py, which writes experiments/focal/results.md (test-split macro-F1 and
# hard_ham recall, mean +- sample std over the seeds).
#   experiments/focal/run.sh [sweep root, default runs/focal]
# Finished jobs are skipped when re-run with the same sweep root.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"
bin="${ATTNLAB_BIN:-$repo/build/attnlab}"
python="${ATTNLAB_PYTHON:-$repo/.venv/bin/python}"  # the project environment (scripts/setup.sh)
root="${1:-runs/focal}"
results="${RESULTS_DIR:-experiments/focal}"  # run_all.sh --quick writes elsewhere
common=(task=classification trainer.threads=1 trainer.progress=plain launcher.parallel=1)

start=$(date +%s)
"$bin" train -m "${common[@]}" loss=cross_entropy seed=1,2,3 run.sweep_dir="$root/ce"
"$bin" train -m "${common[@]}" loss=focal_auto loss.gamma=0,1,2,5 seed=1,2,3 \
  run.sweep_dir="$root/focal"
"$bin" summarize "$root/ce" > /dev/null
"$bin" summarize "$root/focal" > /dev/null
mkdir -p "$results"
"$python" experiments/focal/make_table.py "$root/ce" "$root/focal" \
  --seconds $(( $(date +%s) - start )) > "$results/results.md"
cat "$results/results.md"
