"""results.md of experiments/pretrained_conversion: final validation loss of each conversion started
from the imported checkpoint against the same module trained from scratch, and what init_from
loaded (from each run's log).

  report.py ROOT PRE_STEPS STEPS SECONDS
"""
import datetime
import json
import re
import sys
from pathlib import Path

root, pre_steps, steps, seconds = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
pretrain = json.loads((root / "pretrain" / "result.json").read_text())
names = {
    "mha": "MHA, continue-tuning (reference)",
    "moh": "MHA -> MoH (qnorm router, 50% shared, 25% routed active)",
    "diff": "MHA -> DIFF (q/k/v/o copied, rotate-half RoPE)",
    "gda": "MHA -> GDA (shapes that fit copied)",
    "dlm": "AR -> block diffusion (block 16; NELBO)",
}


def loaded(log: Path) -> str:
    match = re.search(r"loaded (\d+) tensors; (\d+) missing, (\d+) unexpected, (\d+) shape", log.read_text())
    return f"{match.group(1)} / {match.group(2)} / {match.group(4)}" if match else "-"


lines = [
    "# Conversion recipes from an imported Hugging Face checkpoint",
    "",
    f"{datetime.date.today()}: `experiments/pretrained_conversion/run.sh` ({seconds} s on this machine).",
    "A Llama-family model (d_model 128, 4 layers, 4 heads, 2 KV heads, SwiGLU, untied head; byte",
    f"tokenizer, 128-token windows of Moby Dick) pre-trained for {pre_steps} steps (val loss "
    f"{pretrain['val_loss']:.4f}), exported with `attnlab export format=hf`, loaded by transformers,",
    f"imported with `attnlab import`; every row then trains {steps} steps (constant lr, one seed).",
    "",
    "| recipe | val loss from the import | from scratch | loaded / missing / misshapen |",
    "|---|---|---|---|",
]
for key, title in names.items():
    ours = json.loads((root / key / "result.json").read_text())["val_loss"]
    scratch = json.loads((root / f"{key}_scratch" / "result.json").read_text())["val_loss"]
    lines.append(f"| {title} | {ours:.4f} | {scratch:.4f} | {loaded(root / f'{key}.log')} |")
lines += [
    "",
    "One seed and a tiny model: the table shows that each recipe runs end to end from a",
    "transformers folder and whether the pretrained weights help at this scale, not the papers'",
    "claims. The dLM rows report the masked-diffusion NELBO (an upper bound on the NLL), comparable",
    "only with each other.",
]
print("\n".join(lines))
