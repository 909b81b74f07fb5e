#!/usr/bin/env bash
# AR -> dLM conversion (issue #5, docs/methods.md §4) over seeds: validation NLL bounds of an AR model
# before and after turning it into a block-causal masked-diffusion LM with init_from, all on the
# same first 65,536 validation tokens (32 batches x 16 windows of T = 128). Per seed k:
#   1. the AR model's exact NLL (attnlab eval, autoregressive objective);
#   2. the masked-diffusion NELBO (upper bound on NLL) of the unchanged AR weights evaluated as a
#      dLM (objective.name=masked_diffusion, block-causal mask) before any diffusion training;
#   3. the NELBO after STEPS steps of diffusion training (seed k) initialised from the AR weights;
#   4. for reference, the NELBO of the same dLM trained for STEPS steps from scratch (seed k;
#      SCRATCH=0 skips it).
# The AR models are the mha runs of experiments/length_extrapolation, one per seed
# (AR_RUNS/seed<k>); run that first, or point AR_RUNS at a folder of seed<k> AR runs (a folder
# that is itself a finished run serves every seed). report.py writes results.md here: means with
# 95% intervals over seeds and the paired converted - scratch difference with its t-test.
#
#   experiments/ar_to_dlm/run.sh        # env: SEEDS (default "1 2 3"), AR_RUNS, STEPS, BLOCK,
#                                       #      T_SAMPLES, SCRATCH
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin="${ATTNLAB_BIN:-$repo/build/attnlab}"
python="${ATTNLAB_PYTHON:-$repo/.venv/bin/python}"  # the project environment (scripts/setup.sh)
runs="${RUNS:-$repo/runs/ar_to_dlm}"
AR_RUNS="${AR_RUNS:-${AR_RUN:-$repo/runs/length_extrapolation/mha}}"
STEPS="${STEPS:-300}" BLOCK="${BLOCK:-16}" T_SAMPLES="${T_SAMPLES:-4}" SCRATCH="${SCRATCH:-1}"
read -r -a seeds <<< "${SEEDS:-1 2 3}"
ar_run_of() {  # the AR run of seed $1: AR_RUNS/seed<k>, or AR_RUNS itself when it is one run
  if [[ -f "$AR_RUNS/result.json" ]]; then echo "$AR_RUNS"; else echo "$AR_RUNS/seed$1"; fi
}
for seed in "${seeds[@]}"; do
  [[ -f "$(ar_run_of "$seed")/result.json" ]] || {
    echo "no finished AR run at $(ar_run_of "$seed"): run experiments/length_extrapolation/run.sh" \
      "first (SEEDS=\"${seeds[*]}\")" >&2
    exit 2
  }
done
mkdir -p "$runs"
cd "$repo"
AR_RUN=$(ar_run_of "${seeds[0]}")

# The AR run's model and data settings, so the dLM has the same shapes and sees the same data.
same=$("$python" - "$AR_RUN/config.yaml" <<'PY'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
m, d = c["model"], c["data"]
print(" ".join([f"model.{k}={m[k]}" for k in ("d_model", "n_layers", "n_heads", "max_seq_len")] +
               [f"data.{k}={d[k]}" for k in ("seq_len", "batch_size")]))
PY
)
eval_args="eval.seq_lens=[128] eval.batch_size=16 eval.batches=32 eval.t_samples=$T_SAMPLES trainer.threads=1"
dlm_args="objective=masked_diffusion model.mask=block_causal model.block_size=$BLOCK"

evaluate() {  # evaluate <run dir> <name> [overrides...]
  local dir=$1 name=$2
  shift 2
  "$bin" eval run_dir="$dir" $eval_args "$@"
  cp "$dir/eval.json" "$out/$name.json"
}

train_dlm() {  # train_dlm <name> [overrides...]
  local name=$1
  shift
  local start=$(date +%s)
  "$bin" train run.dir="$out/$name" seed="$seed" $same $dlm_args trainer.max_steps=$STEPS \
    scheduler.warmup_steps=$((STEPS / 10)) trainer.eval_every=$STEPS trainer.threads=1 \
    trainer.progress=none trainer.log_every=50 "$@" | tail -n 2
  echo "seed $seed $name: train wall time $(( $(date +%s) - start )) s"
  evaluate "$out/$name" "$name"
}

for seed in "${seeds[@]}"; do
  ar_run=$(ar_run_of "$seed")
  out="$runs/seed$seed"
  mkdir -p "$out"
  evaluate "$ar_run" ar_nll
  evaluate "$ar_run" ar_weights_as_dlm objective.name=masked_diffusion model.mask=block_causal \
    model.block_size=$BLOCK
  train_dlm converted init_from="$ar_run"
  [[ "$SCRATCH" == 1 ]] && train_dlm scratch
done
mkdir -p "${RESULTS_DIR:-$here}"
"$python" "$here/report.py" "$runs" "${RESULTS_DIR:-$here}" --steps "$STEPS" --block "$BLOCK" \
  --t-samples "$T_SAMPLES" --ar-runs "$AR_RUNS" --seeds "${seeds[*]}"
