#!/usr/bin/env bash
# The README's first command: set up (install + build), fetch Moby Dick, train the default
# experiment (a byte-level GPT, configs/config.yaml defaults) and print the final validation
# loss and a sample. Extra arguments are passed to `attnlab train` as overrides.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
"$repo/scripts/setup.sh"
cd "$repo"
exec "${BUILD_DIR:-$repo/build}/attnlab" train run.dir=runs/default trainer.sample.max_new_tokens=300 "$@"
