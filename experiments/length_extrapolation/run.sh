#!/usr/bin/env bash
# Length extrapolation (issue #5): train `mha` and `lssar` GPTs at T = 128 on Moby Dick (byte
# tokenizer) with identical settings, then evaluate each at T = 128 ... 2048 on the same first
# 65,536 validation tokens at every length (eval.batch_size = 2048/T windows per batch x 32
# batches), and write results.md + extrapolation.png here (report.py).
#
#   experiments/length_extrapolation/run.sh            # train (resumes if interrupted) + eval + report
#   STEPS=1000 experiments/length_extrapolation/run.sh  # other sizes: STEPS, BATCH, D_MODEL, LAYERS
#
# One thread each and one run at a time (the project machine has 2 shared cores). Run dirs go to
# runs/length_extrapolation/<attention> (ignored by git); only the report is committed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin="${ATTNLAB_BIN:-$repo/build/attnlab}"
python="${ATTNLAB_PYTHON:-$repo/.venv/bin/python}"  # the project environment (scripts/setup.sh)
runs="${RUNS:-$repo/runs/length_extrapolation}"
STEPS="${STEPS:-600}" BATCH="${BATCH:-16}" D_MODEL="${D_MODEL:-128}" LAYERS="${LAYERS:-4}"
HEADS="${HEADS:-4}" TRAIN_LEN=128
LENS=(128 256 512 1024 2048)

cd "$repo"
for attention in mha lssar; do
  dir="$runs/$attention"
  start=$(date +%s)
  "$bin" train attention=$attention run.dir="$dir" seed=1 \
    model.d_model=$D_MODEL model.n_layers=$LAYERS model.n_heads=$HEADS \
    data.seq_len=$TRAIN_LEN model.max_seq_len=$TRAIN_LEN data.batch_size=$BATCH \
    trainer.max_steps=$STEPS scheduler.warmup_steps=$((STEPS / 10)) trainer.eval_every=$STEPS \
    trainer.checkpoint_every=$((STEPS / 4)) trainer.threads=1 trainer.progress=none \
    trainer.log_every=50 | tail -n 3
  echo "$attention: train wall time $(( $(date +%s) - start )) s"
  # Same 65,536 validation tokens at every length: 32 batches of 2048/T windows.
  for len in "${LENS[@]}"; do
    "$bin" eval run_dir="$dir" eval.seq_lens=[$len] eval.batch_size=$((2048 / len)) \
      eval.batches=32 trainer.threads=1 | tail -n 1
    cp "$dir/eval.json" "$dir/eval_$len.json"
  done
done
mkdir -p "${RESULTS_DIR:-$here}"
"$python" "$here/report.py" "$runs" "${RESULTS_DIR:-$here}" --steps "$STEPS" --batch "$BATCH" \
  --model "d_model=$D_MODEL n_layers=$LAYERS n_heads=$HEADS"
