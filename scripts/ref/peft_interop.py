#!/usr/bin/env python3
"""PEFT interop reference for tests/interop/hf (the real `peft`, `transformers` and `safetensors`).

  peft_interop.py logits BASE ADAPTER IDS OUT
      loads BASE (a transformers folder) with AutoModelForCausalLM, puts the adapter folder ADAPTER
      (attnlab export format=peft) on it with peft.PeftModel.from_pretrained, requires that every
      tensor of ADAPTER's adapter_model.safetensors landed in the model unchanged (no key left
      out), and writes the logits for IDS' ids to OUT as logits32 (float32 model) and logits64
      (float64 model). Prints one JSON line: the adapted modules, peft's LoRA scaling and the
      largest change the adapter makes to the logits.

No network: BASE and ADAPTER are local folders.
"""
import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
import transformers  # noqa: E402
from peft import PeftModel  # noqa: E402
from peft.tuners.lora import LoraLayer  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402

transformers.logging.set_verbosity_error()


def adapted(base, adapter, dtype):
    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype)
    return PeftModel.from_pretrained(model, adapter).to(dtype).eval()


def logits(base, adapter, ids_path, out):
    ids = load_file(ids_path)["ids"]
    saved = load_file(os.path.join(adapter, "adapter_model.safetensors"))
    results = {}
    info = {}
    for name, dtype in (("logits32", torch.float32), ("logits64", torch.float64)):
        model = adapted(base, adapter, dtype)
        state = model.state_dict()
        for key, tensor in saved.items():
            placed = key.replace(".lora_A.weight", ".lora_A.default.weight").replace(
                ".lora_B.weight", ".lora_B.default.weight")
            if placed not in state:
                sys.exit(f"adapter tensor {key} has no place in the PEFT model ({placed})")
            if not torch.equal(state[placed].to(torch.float64), tensor.to(torch.float64)):
                sys.exit(f"adapter tensor {key} loaded with other values")
        with torch.no_grad():
            results[name] = model(input_ids=ids).logits.to(torch.float64).contiguous()
            with model.disable_adapter():
                base_logits = model(input_ids=ids).logits.to(torch.float64)
        layers = [m for _, m in model.named_modules() if isinstance(m, LoraLayer)]
        info = {"modules": len(layers),
                "scaling": sorted({m.scaling["default"] for m in layers}),
                "adapter_effect": (results[name] - base_logits).abs().max().item()}
    save_file(results, out)
    print(json.dumps(info))


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "logits":
        logits(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
    else:
        sys.exit(__doc__)
