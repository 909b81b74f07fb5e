#!/usr/bin/env bash
# plot_default_run.sh: regenerates docs/images/default_loss.png, the loss curves of the default
# experiment that README.md and the docs show, from a run directory of that experiment.
#
#   scripts/docs/plot_default_run.sh [RUN_DIR]      plot an existing run (default: runs/default,
#                                                   the directory scripts/train_default.sh writes)
#   scripts/docs/plot_default_run.sh --train        first train the default experiment with
#                                                   scripts/train_default.sh (setup + build + about
#                                                   1200 steps on the CPU), then plot it
#   options: --force (plot a run with other overrides too), --out FILE (default
#            docs/images/default_loss.png)
#
# The run must be the default experiment: its overrides.yaml may set only run.*, trainer.progress,
# trainer.tensorboard and trainer.sample_* (what train_default.sh passes), else the script stops
# (--force plots it anyway). The plot is scripts/plot_metrics.py's (train/val loss, loss terms,
# learning rate) drawn with the project Python ($ATTNLAB_PYTHON, else .venv/bin/python).
# At the end it prints the facts a caption needs: the command (the run's command.txt), the date
# the run finished (result.json) and this machine (CPU model, cores), which is the training
# machine only when the run was trained here.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
python="${ATTNLAB_PYTHON:-$repo/.venv/bin/python}"
out="$repo/docs/images/default_loss.png"
run_dir=""
train=0
force=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --train) train=1 ;;
    --force) force=1 ;;
    --out) out="$2"; shift ;;
    --out=*) out="${1#--out=}" ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "plot_default_run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) [[ -z "$run_dir" ]] || { echo "plot_default_run.sh: one run directory only" >&2; exit 2; }
       run_dir="$1" ;;
  esac
  shift
done
if [[ $train == 1 ]]; then
  if [[ -n "$run_dir" ]]; then
    echo "plot_default_run.sh: --train writes runs/default; give no RUN_DIR" >&2
    exit 2
  fi
  "$repo/scripts/train_default.sh"
fi
run_dir="${run_dir:-$repo/runs/default}"

if [[ ! -f "$run_dir/metrics.jsonl" ]]; then
  echo "plot_default_run.sh: $run_dir has no metrics.jsonl. Train the default experiment first:" >&2
  echo "  scripts/train_default.sh            (writes runs/default), or" >&2
  echo "  scripts/docs/plot_default_run.sh --train" >&2
  exit 1
fi
if [[ ! -x "$python" ]]; then
  echo "plot_default_run.sh: no project Python at $python" >&2
  echo "  (run scripts/setup.sh, or set ATTNLAB_PYTHON)" >&2
  exit 1
fi

# Overrides other than where the run goes and what it prints make it another experiment.
if [[ -f "$run_dir/overrides.yaml" ]]; then
  other=$("$python" - "$run_dir/overrides.yaml" <<'EOF'
import re, sys
import yaml
allowed = re.compile(r"^(run\.[\w.]+|trainer\.(progress|tensorboard|sample_\w+))=")
items = yaml.safe_load(open(sys.argv[1])) or []
print(" ".join(str(i) for i in items if not allowed.match(str(i))))
EOF
  )
  if [[ -n "$other" && $force == 0 ]]; then
    echo "plot_default_run.sh: $run_dir is not the default experiment (overrides: $other);" >&2
    echo "  pass --force to plot it anyway" >&2
    exit 1
  fi
fi
[[ -f "$run_dir/result.json" ]] ||
  echo "plot_default_run.sh: warning: $run_dir has no result.json (the run did not finish)" >&2

mkdir -p "$(dirname "$out")"
"$python" "$repo/scripts/plot_metrics.py" "$run_dir" "$out"
echo "wrote ${out#$repo/}"

finished="unknown"
[[ -f "$run_dir/result.json" ]] && finished=$(date -u -r "$run_dir/result.json" +%Y-%m-%d)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -1)
echo "caption facts:"
echo "  command:  $(cat "$run_dir/command.txt" 2>/dev/null || echo scripts/train_default.sh)"
echo "  finished: $finished"
echo "  machine:  ${cpu:-$(uname -m)}, $(nproc) cores"
echo "            (this machine: name it in the caption only if it trained the run)"
