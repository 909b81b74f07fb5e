#!/usr/bin/env bash
# Whole-loop training speed of two attnlab builds on the same config: for refactors of the
# training loop (e.g. issue #16's one loop with a task seam), whose cost the step benchmarks
# (bench_gpt_step) do not see. Runs `attnlab train` with each build in turn, ROUNDS times,
# alternating, so a slow spell of a shared machine hits both; reads tokens_per_s from each run's
# metrics.jsonl (steps after the first WARMUP; every attnlab version logs it for every task) and
# prints the median tokens/s per build and the median of the per-round ratios (candidate /
# baseline; > 1 = the candidate is faster).
#
#   experiments/bench/compare_train_speed.sh BASELINE_DIR CANDIDATE_DIR [overrides...]
#     Run it from outside the checkout (e.g. cd /tmp): a configs/ folder in the working directory
#     comes first on both builds' config search path.
#     BASELINE_DIR / CANDIDATE_DIR: folders holding an `attnlab` and its libattnlab_runtime.so
#     environment: ROUNDS (default 3), STEPS (default 40), WARMUP (default 5)
set -euo pipefail
[[ $# -ge 2 ]] || { sed -n 2,15p "$0" >&2; exit 2; }
baseline="$1" candidate="$2"
shift 2
for dir in "$baseline" "$candidate"; do
  [[ -x $dir/attnlab ]] || { echo "no attnlab in '$dir'" >&2; exit 2; }
done
rounds="${ROUNDS:-3}" steps="${STEPS:-40}" warmup="${WARMUP:-5}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
python="$root/.venv/bin/python"
[[ -x $python ]] || python=python3
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

median_tokens_per_s() {  # metrics.jsonl -> median tokens_per_s after the warm-up steps
  "$python" - "$1" "$warmup" <<'EOF'
import json, statistics, sys
values = [r["tokens_per_s"] for r in map(json.loads, open(sys.argv[1]))
          if "tokens_per_s" in r and r["step"] > int(sys.argv[2])]
print(statistics.median(values))
EOF
}

declare -a base cand ratios
for ((round = 1; round <= rounds; ++round)); do
  for which in baseline candidate; do
    dir="$baseline"
    [[ $which == candidate ]] && dir="$candidate"
    run="$work/$which-$round"
    "$dir/attnlab" train run.dir="$run" trainer.max_steps="$steps" trainer.log_every=1 \
      trainer.eval_every=0 trainer.checkpoint_every=0 trainer.progress=none \
      trainer.tensorboard=false "$@" > "$work/$which-$round.log" 2>&1 ||
      { cat "$work/$which-$round.log" >&2; exit 1; }
    speed="$(median_tokens_per_s "$run/metrics.jsonl")"
    if [[ $which == baseline ]]; then base+=("$speed"); else cand+=("$speed"); fi
  done
  ratios+=("$("$python" -c "print(${cand[-1]} / ${base[-1]})")")
  printf 'round %d: baseline %.0f tokens/s, candidate %.0f tokens/s\n' "$round" "${base[-1]}" \
    "${cand[-1]}"
done
"$python" - "${base[*]}" "${cand[*]}" "${ratios[*]}" <<'EOF'
import statistics, sys
base, cand, ratios = ([float(x) for x in arg.split()] for arg in sys.argv[1:4])
print(f"median tokens/s: baseline {statistics.median(base):.0f}, candidate {statistics.median(cand):.0f}")
print(f"median ratio candidate/baseline: {statistics.median(ratios):.3f} "
      f"(rounds: {', '.join(f'{r:.3f}' for r in ratios)})")
EOF
