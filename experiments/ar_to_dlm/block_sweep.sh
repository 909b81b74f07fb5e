#!/usr/bin/env bash
# Block-size sweep of the AR -> block-diffusion conversion (issue #18): experiments/ar_to_dlm/run.sh
# once per block size L' (BLOCKS, default "4 16 64 128"; 128 = the whole window, one block, the
# MDLM limit), each over the same seeds and AR runs, then block_report.py writes
# results_block_sweep.md: per block size the NELBO of the AR weights before diffusion training,
# after conversion (init_from) and from scratch (mean and 95% t interval over seeds), and the
# paired converted - scratch difference with its t-test. Every NELBO bounds the NLL of the same
# validation tokens, so rows compare across block sizes (BD3-LM: the bound tightens as L' shrinks
# towards autoregression, L' = 1). A block size whose runs are all there is not rerun.
#   experiments/ar_to_dlm/block_sweep.sh [runs dir, default runs/ar_to_dlm_blocks]
#   env: BLOCKS, and run.sh's SEEDS, AR_RUNS (default runs/length_extrapolation/mha), STEPS, T_SAMPLES
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
python="${ATTNLAB_PYTHON:-$repo/.venv/bin/python}"
root="${1:-$repo/runs/ar_to_dlm_blocks}"
read -r -a blocks <<< "${BLOCKS:-4 16 64 128}"
read -r -a seeds <<< "${SEEDS:-1 2 3}"
mkdir -p "$root"
start=$(date +%s)
for block in "${blocks[@]}"; do
  done_all=1
  for seed in "${seeds[@]}"; do
    [[ -f "$root/block$block/seed$seed/scratch.json" ]] || done_all=0
  done
  if ((done_all)); then
    echo "block $block: every seed's runs are there, not rerun"
    continue
  fi
  echo "== block size $block"
  RUNS="$root/block$block" BLOCK="$block" RESULTS_DIR="$root/block$block/results" SCRATCH=1 \
    "$here/run.sh"
done
"$python" "$here/block_report.py" "$root" "${RESULTS_DIR:-$here}" --blocks "${blocks[*]}" \
  --seeds "${seeds[*]}" --seconds $(( $(date +%s) - start ))
cat "${RESULTS_DIR:-$here}/results_block_sweep.md"
