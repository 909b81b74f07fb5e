#!/usr/bin/env bash
# Training speed of the rows of an ablation, interleaved: a sweep runs its rows one after
# another, so a slow spell of a shared machine lands on one row and shows up as a speed
# difference (on the 2-core VM the same run varies by ±15%). This runs one full `attnlab train`
# per row in turn, ROUNDS times (round k uses seed=k), reads tokens_per_s from each result.json,
# and prints every run, each row's per-round ratio to the first row (the baseline) and the mean
# ratio. The runs are the sweep's own, so their val_loss is printed too (it matches the sweep's
# run of the same seed).
#
#   experiments/bench/compare_rows_speed.sh "<common overrides>" "<row 1>" "<row 2>" [...]
#   e.g. experiments/bench/compare_rows_speed.sh "experiment=dataset_decomposition" \
#          "data.sampler=random" "data.sampler=dataset_decomposition" \
#          "data.sampler=dataset_decomposition data.decomposition.curriculum=cyclic"
#   environment: ROUNDS (default 3), ATTNLAB_BIN, WORK (default: a temporary folder, removed)
set -euo pipefail
[[ $# -ge 3 ]] || { sed -n 2,14p "$0" >&2; exit 2; }
common="$1"
shift
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${ATTNLAB_BIN:-$root/build/attnlab}"
python="$root/.venv/bin/python"
[[ -x $python ]] || python=python3
rounds="${ROUNDS:-3}"
if [[ -n "${WORK:-}" ]]; then
  work="$WORK"
  mkdir -p "$work"
else
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
fi
rows=("$@")
for round in $(seq 1 "$rounds"); do
  for i in "${!rows[@]}"; do
    dir="$work/round${round}_row$i"
    rm -rf "$dir"
    # shellcheck disable=SC2086  # the overrides are words
    "$bin" train $common ${rows[$i]} seed="$round" run.dir="$dir" trainer.progress=none \
      > "$dir.log" 2>&1 || { echo "row $i failed; log: $dir.log" >&2; tail -n 5 "$dir.log" >&2; exit 1; }
  done
done
"$python" - "$work" "$rounds" "${rows[@]}" <<'PY'
import json, os, sys
work, rounds, rows = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
def result(r, i):
    return json.load(open(os.path.join(work, f"round{r}_row{i}", "result.json")))
print("| row | tokens/s per round | val_loss per round | ratio to row 0 per round | mean ratio |")
print("|---|---|---|---|---:|")
base = [result(r, 0)["tokens_per_s"] for r in range(1, rounds + 1)]
for i, row in enumerate(rows):
    res = [result(r, i) for r in range(1, rounds + 1)]
    speed = [x["tokens_per_s"] for x in res]
    ratio = [s / b for s, b in zip(speed, base)]
    speeds = " / ".join(f"{s:.0f}" for s in speed)
    losses = " / ".join(f"{x['val_loss']:.5f}" for x in res)
    ratios = " / ".join(f"{q:.3f}" for q in ratio)
    print(f"| {row} | {speeds} | {losses} | {ratios} | {sum(ratio) / len(ratio):.3f} |")
PY
