#!/usr/bin/env bash
# The papers' conversion recipes started from a Hugging Face checkpoint (issue #19). No hub is
# reachable here, so the "pretrained model" is made in the same run: a Llama-family model
# (model=llama: RMSNorm, RoPE, SwiGLU, GQA, untied head) pre-trained on Moby Dick by attnlab,
# exported with `attnlab export format=hf` (a transformers folder; the script checks that
# AutoModelForCausalLM loads it) and imported back with `attnlab import`. From that folder:
#   mha      continue-tuning the model as it is (the reference for every conversion);
#   moh      MHA -> MoH, MoH-LLaMA3's recipe (docs/methods.md §1): the parameter-free qnorm router,
#            hs = 0.5 h shared heads, K = 0.25 h routed heads active, q/k/v/o copied from the
#            pretrained heads (grouped KV heads repeated per query head: same function);
#   diff     MHA -> DIFF: q/k/v/o copied (DIFF head j pairs pretrained heads 2j, 2j+1 as q1/q2,
#            k1/k2 and its value is [v_2j; v_2j+1]), lambdas and subln fresh, RoPE rotate-half to
#            keep the pretrained pairing (the DIFF paper trains from scratch: this is our choice);
#   gda      MHA -> GDA: what fits by shape is copied (q, k, embeddings, norms, MLPs); value and
#            output projections have GDA's own widths and start fresh (also our choice);
#   dlm      AR -> block-diffusion (Efficient-DLM): block-causal mask, masked-diffusion objective,
#            a MASK row appended to the vocabulary when the tokenizer has none;
# each against the same module trained from scratch for the same steps. Writes results.md.
#   experiments/pretrained_conversion/run.sh [work dir, default runs/pretrained_conversion]
#   env: PRE_STEPS (pre-training, 600), STEPS (each conversion, 300), RESULTS_DIR
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$repo"
bin="${ATTNLAB_BIN:-$repo/build/attnlab}"
python="${ATTNLAB_PYTHON:-$repo/.venv/bin/python}"
root="${1:-runs/pretrained_conversion}"
results="${RESULTS_DIR:-$here}"
PRE_STEPS="${PRE_STEPS:-600}" STEPS="${STEPS:-300}"
mkdir -p "$root" "$results"
rm -rf "$root/hf" "$root/imported"
start=$(date +%s)
common="data=moby_dick data.seq_len=128 model.max_seq_len=128 scheduler=constant \
trainer.progress=none"
"$bin" train model=llama run.dir="$root/pretrain" trainer.max_steps="$PRE_STEPS" \
  trainer.eval_every="$PRE_STEPS" trainer.checkpoint_every="$PRE_STEPS" $common
"$bin" export format=hf run_dir="$root/pretrain" out="$root/hf"
"$python" -c "import sys, transformers as t; t.logging.set_verbosity_error(); \
m = t.AutoModelForCausalLM.from_pretrained(sys.argv[1]); \
print('transformers loads', type(m).__name__, sum(p.numel() for p in m.parameters()), 'parameters')" \
  "$root/hf"
"$bin" import hf_dir="$root/hf" out="$root/imported"

tune="trainer.max_steps=$STEPS trainer.eval_every=$STEPS trainer.checkpoint_every=$STEPS $common"
declare -A variant=(
  [mha]=""
  [moh]="attention=moh attention.router=qnorm attention.proj_bias=false model.n_kv_heads=0"
  [diff]="attention=diff attention.rope_style=rotate_half"
  [gda]="attention=gda attention.rope_style=rotate_half"
  [dlm]="objective=masked_diffusion model.mask=block_causal model.block_size=16"
)
for name in mha moh diff gda dlm; do
  rm -rf "$root/$name" "$root/${name}_scratch"
  # From the imported folder (init_from sets model.* from it; the variant's keys come after).
  "$bin" train model=llama init_from="$root/imported" run.dir="$root/$name" $tune \
    ${variant[$name]} > "$root/$name.log" 2>&1 || { tail -20 "$root/$name.log"; exit 1; }
  # The same architecture from scratch: the pretrained settings, without the weights.
  settings=$("$python" -c "import sys, yaml; \
print(' '.join(o for o in yaml.safe_load(open(sys.argv[1]))['overrides'] \
if not o.startswith('tokenizer')))" "$root/imported/pretrained.yaml")
  "$bin" train model=llama $settings run.dir="$root/${name}_scratch" $tune ${variant[$name]} \
    > "$root/${name}_scratch.log" 2>&1 || { tail -20 "$root/${name}_scratch.log"; exit 1; }
done
"$python" "$here/report.py" "$root" "$PRE_STEPS" "$STEPS" "$(( $(date +%s) - start ))" \
  > "$results/results.md"
cat "$results/results.md"
