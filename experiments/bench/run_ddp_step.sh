#!/usr/bin/env bash
# Runs bench_ddp_step at 1 rank and at 2 MPI ranks (1 thread each) and prints both tables plus
# the 2-rank/1-rank step-time ratio per bucket size.
#   experiments/bench/run_ddp_step.sh [build dir] [bench args, e.g. steps=30 width=512 backend=gloo]
set -euo pipefail
BUILD="${1:-build}"
shift || true
BENCH="$BUILD/bench_ddp_step"
[[ -x "$BENCH" ]] || { echo "build it first: make -C $BUILD bench_ddp_step" >&2; exit 1; }
export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
one="$("$BENCH" "$@")"
# Shared-memory transport without CMA (ptrace is often forbidden in containers), as in the tests.
two="$(mpirun -np 2 --oversubscribe --bind-to none --mca btl self,vader \
  --mca btl_vader_single_copy_mechanism none "$BENCH" "$@")"
echo "$one"
echo
echo "$two"
echo
echo "step time ratio, 2 ranks / 1 rank (same per-rank batch; ideal weak scaling = 1.00):"
paste <(echo "$one" | awk '$1 ~ /^[0-9.]+$/ {print $1, $3}') \
      <(echo "$two" | awk '$1 ~ /^[0-9.]+$/ {print $3}') |
  awk '{printf "  bucket_mb %8.2f: %.2f\n", $1, $3 / $2}'
