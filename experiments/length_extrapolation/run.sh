#!/usr/bin/env bash
# Length extrapolation (issue #5, three seeds for issue #18): train `mha` and `lssar` GPTs at
# T = 128 on Moby Dick (byte tokenizer) with identical settings, once per seed (SEEDS, default
# 1 2 3), then evaluate each at T = 128 ... 2048 on the same first 65,536 validation tokens at
# every length (eval.batch_size = 2048/T windows per batch x 32 batches), and write results.md +
# extrapolation.png here (report.py: mean and 95% t interval over seeds per arm and length, and
# the paired LSSAR - MHA difference of loss(2048) - loss(128) with its paired t-test).
#
#   experiments/length_extrapolation/run.sh            # train (resumes if interrupted) + eval + report
#   STEPS=1000 experiments/length_extrapolation/run.sh  # other sizes: STEPS, BATCH, D_MODEL, LAYERS, HEADS
#   SEEDS="1 2 3 4 5" experiments/length_extrapolation/run.sh
#
# One thread per run, PARALLEL (default 2) runs at a time: each run is one train + its five evals
# (the project machine has 2 shared cores). Run dirs go to runs/length_extrapolation/<attention>/
# seed<k> (RUNS overrides the root; ignored by git; a finished run dir is reused, an interrupted
# one resumes), each with its log next to it (seed<k>.log, which report.py reads the wall times
# from); the mha ones are the AR models experiments/ar_to_dlm converts, one per seed. Only the
# report is committed. experiments/run_all.sh --quick runs the three seeds too, on its tiny
# settings (about 25 s): that checks the multi-seed report, and ar_to_dlm needs every seed's run.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin="${ATTNLAB_BIN:-$repo/build/attnlab}"
python="${ATTNLAB_PYTHON:-$repo/.venv/bin/python}"  # the project environment (scripts/setup.sh)
runs="${RUNS:-$repo/runs/length_extrapolation}"
STEPS="${STEPS:-600}" BATCH="${BATCH:-16}" D_MODEL="${D_MODEL:-128}" LAYERS="${LAYERS:-4}"
HEADS="${HEADS:-4}" PARALLEL="${PARALLEL:-2}" TRAIN_LEN=128
LENS=(128 256 512 1024 2048)
read -r -a seeds <<< "${SEEDS:-1 2 3}"

run_one() {  # run_one <attention> <seed> <dir>: train, then eval at every length (stdout: log)
  local attention=$1 seed=$2 dir=$3 start len
  start=$(date +%s)
  "$bin" train attention="$attention" run.dir="$dir" seed="$seed" \
    model.d_model="$D_MODEL" model.n_layers="$LAYERS" model.n_heads="$HEADS" \
    data.seq_len=$TRAIN_LEN model.max_seq_len=$TRAIN_LEN data.batch_size="$BATCH" \
    trainer.max_steps="$STEPS" scheduler.warmup_steps=$((STEPS / 10)) trainer.eval_every="$STEPS" \
    trainer.checkpoint_every=$((STEPS / 4)) trainer.threads=1 trainer.progress=none \
    trainer.log_every=50 || return 1
  echo "$attention seed $seed: train wall time $(($(date +%s) - start)) s"
  start=$(date +%s)
  # Same 65,536 validation tokens at every length: 32 batches of 2048/T windows.
  for len in "${LENS[@]}"; do
    "$bin" eval run_dir="$dir" eval.seq_lens=[$len] eval.batch_size=$((2048 / len)) \
      eval.batches=32 trainer.threads=1 || return 1
    cp "$dir/eval.json" "$dir/eval_$len.json" || return 1
  done
  echo "$attention seed $seed: eval wall time $(($(date +%s) - start)) s"
}

cd "$repo"
start=$(date +%s)
dirs=() failed=0
for seed in "${seeds[@]}"; do
  for attention in mha lssar; do
    dir="$runs/$attention/seed$seed"
    mkdir -p "$runs/$attention"
    dirs+=("$dir")
    while (($(jobs -rp | wc -l) >= PARALLEL)); do wait -n || failed=1; done
    ((failed)) && break 2
    echo "$attention seed $seed: $dir (log $dir.log)"
    { run_one "$attention" "$seed" "$dir" > "$dir.log" 2>&1 && grep "wall time" "$dir.log"; } || {
      echo "$attention seed $seed failed; its log: $dir.log" >&2
      tail -n 20 "$dir.log" >&2
      exit 1
    } &
  done
done
while (($(jobs -rp | wc -l) > 0)); do wait -n || failed=1; done
for dir in "${dirs[@]}"; do [[ -f "$dir/eval_${LENS[-1]}.json" ]] || failed=1; done
((failed)) && { echo "a run failed (its log is above)" >&2; exit 1; }
seconds=$(($(date +%s) - start))
echo "all runs: $seconds s"
results="${RESULTS_DIR:-$here}"  # run_all.sh --quick writes elsewhere
mkdir -p "$results"
"$python" "$here/report.py" "${dirs[@]}" --seeds "${seeds[@]}" --out "$results" \
  --steps "$STEPS" --batch "$BATCH" --model "d_model=$D_MODEL n_layers=$LAYERS n_heads=$HEADS" \
  --seconds "$seconds" --parallel "$PARALLEL"
