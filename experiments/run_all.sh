#!/usr/bin/env bash
# Reruns every experiment attnlab ships, in dependency order (the AR -> dLM conversion starts
# from the length-extrapolation MHA run), each with its own run.sh, and records when and how long.
#   experiments/run_all.sh [DIR]      full scale, runs under DIR (default runs/all): the scripts of
#                                     length_extrapolation, ar_to_dlm (and its block-size sweep),
#                                     decorrelation, focal and pretrained_conversion rewrite their
#                                     results files (and plots);
#                                     the sweeps (dataset_decomposition, grades, the attention and
#                                     MoH ablations) print their summary table into DIR/<name>.log
#                                     and DIR/<name>/summary.md, from which their hand-written
#                                     results.md is updated. Sets the "Last full rerun" line of
#                                     experiments/RESULTS.md. About 1.5 hours on 2 cores
#   experiments/run_all.sh --quick [DIR]
#                                     a smoke pass for CI: every script end to end on tiny settings
#                                     (4 steps, 2 layers of width 32 with 4 heads, 12 documents), writing its runs
#                                     and results under DIR (default: a temporary folder), never
#                                     into experiments/. Numbers from it mean nothing.
# The verdicts in experiments/RESULTS.md are written by a person from the results files: a rerun
# updates the numbers in the per-experiment files, not the judgement.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
bin="${ATTNLAB_BIN:-$repo/build/attnlab}"
quick=0
if [[ "${1:-}" == "--quick" ]]; then
  quick=1
  root="${2:-$(mktemp -d "${TMPDIR:-/tmp}/attnlab_run_all.XXXXXX")}"
else
  root="${1:-runs/all}"
fi
mkdir -p "$root"
root="$(cd "$root" && pwd)"

if ((quick)); then
  # Every `train` gets tiny settings appended (later overrides win); eval gets few batches.
  wrapper="$root/attnlab_quick"
  cat > "$wrapper" <<WRAP
#!/usr/bin/env bash
command="\${1:-}"
data_limit=data.max_documents=12
for arg in "\$@"; do [[ "\$arg" == task=classification ]] && data_limit=data.max_per_class=12; done
case "\$command" in
  train) exec "$bin" "\$@" trainer.max_steps=4 trainer.eval_every=2 trainer.checkpoint_every=4 \\
           trainer.eval_batches=1 "\$data_limit" model.d_model=32 model.n_layers=2 \\
           model.n_heads=4 data.batch_size=4 trainer.threads=1 ;;
  eval) exec "$bin" "\$@" eval.batches=1 ;;
  *) exec "$bin" "\$@" ;;
esac
WRAP
  chmod +x "$wrapper"
  export ATTNLAB_BIN="$wrapper"
  export STEPS=4 BATCH=4 D_MODEL=32 LAYERS=2 HEADS=4 T_SAMPLES=1
fi

declare -a names seconds
run() {  # run <name> <command...>
  local name=$1 start
  shift
  start=$(date +%s)
  if ((quick)); then export RESULTS_DIR="$root/results/$name"; fi
  echo "== $name: $*"
  "$@" > "$root/$name.log" 2>&1 || {
    echo "experiment $name failed; its log: $root/$name.log" >&2
    tail -n 20 "$root/$name.log" >&2
    exit 1
  }
  names+=("$name")
  seconds+=($(($(date +%s) - start)))
}

RUNS="$root/length_extrapolation" run length_extrapolation experiments/length_extrapolation/run.sh
RUNS="$root/ar_to_dlm" AR_RUN="$root/length_extrapolation/mha" run ar_to_dlm \
  experiments/ar_to_dlm/run.sh
# The block-size sweep reuses the conversion runs above as its L' = 16 row (the same settings).
mkdir -p "$root/ar_to_dlm_blocks"
ln -sfn "$root/ar_to_dlm" "$root/ar_to_dlm_blocks/block16"
AR_RUNS="$root/length_extrapolation/mha" run ar_to_dlm_blocks experiments/ar_to_dlm/block_sweep.sh \
  "$root/ar_to_dlm_blocks"
run decorrelation experiments/decorrelation/run.sh "$root/decorrelation"
run focal experiments/focal/run.sh "$root/focal"
run dataset_decomposition experiments/dataset_decomposition/run.sh "$root/dataset_decomposition"
run grades experiments/grades/run.sh "$root/grades"
run attention_ablation experiments/attention_ablation/run.sh "$root/attention_ablation"
run attention_ablation_larger experiments/attention_ablation/run_larger.sh \
  "$root/attention_ablation_larger"
run moh_ablation experiments/moh_ablation/run.sh "$root/moh_ablation"
run pretrained_conversion experiments/pretrained_conversion/run.sh "$root/pretrained_conversion"

echo "| experiment | seconds |"
echo "|---|---|"
for i in "${!names[@]}"; do echo "| ${names[$i]} | ${seconds[$i]} |"; done
if ((quick)); then
  echo "quick pass: every experiment ran end to end; runs and results under $root"
else
  total=0
  for s in "${seconds[@]}"; do total=$((total + s)); done
  sed -i "s/^Last full rerun: .*/Last full rerun: $(date -u +%Y-%m-%d) with experiments\/run_all.sh ($total s)./" \
    experiments/RESULTS.md
fi
