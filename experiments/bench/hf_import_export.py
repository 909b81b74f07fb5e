"""Speed and peak memory of `attnlab import` and `attnlab export format=hf` on a 1B-sized checkpoint.

What it measures, and why: issue #19 asks that importing and exporting a Hugging Face checkpoint of
a real 1B Llama's shapes run at disk speed with peak RSS below 1.2x the model's size. This script

  1. writes a synthetic checkpoint with Llama-3.2-1B's shapes (hidden 2048, 16 layers, 32 heads,
     8 KV heads, intermediate 8192, vocabulary 128256, tied head; 1.236e9 parameters) in bf16 with
     random weights, as one model.safetensors (the real one is a single 2.47 GB file), with the
     `safetensors` package, plus its config.json;
  2. measures the disk in the same run: `cp` of that file followed by `sync` of the copy (read +
     write of the same bytes down to the disk: the floor for a conversion that reads and writes
     once and fsyncs, as attnlab does), and `cat > /dev/null` of it;
  3. runs `attnlab import hf_dir=... out=... dtype=bfloat16` and `attnlab export format=hf
     dtype=bfloat16 run_dir=<import> out=...`, each in its own process under /usr/bin/time
     (wall time, peak RSS);
  4. checks the export against the source: every tensor of the exported model.safetensors equals
     the synthetic checkpoint's (read back with `safetensors`), so the numbers are of a correct
     conversion.

Peak RSS is compared with the model's size in bytes (bf16: 2 bytes per parameter) and includes
the ~0.5 GB every attnlab command spends on the LibTorch runtime. Results go to stdout and, with
--out, to a Markdown file.

  /work/main/.venv/bin/python experiments/bench/hf_import_export.py [--work DIR] [--out FILE]
                                                                    [--layers 16]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

REPO = Path(__file__).resolve().parents[2]


def llama_1b_config(layers: int) -> dict:
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048,
        "intermediate_size": 8192, "num_hidden_layers": layers, "num_attention_heads": 32,
        "num_key_value_heads": 8, "head_dim": 64, "hidden_act": "silu",
        "max_position_embeddings": 131072, "rms_norm_eps": 1e-5,
        "rope_parameters": {"rope_theta": 500000.0, "rope_type": "default"},
        "tie_word_embeddings": True, "vocab_size": 128256, "dtype": "bfloat16",
    }


def write_checkpoint(folder: Path, layers: int) -> int:
    """The synthetic checkpoint; returns its parameter count."""
    cfg = llama_1b_config(layers)
    d, f, v, kv = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"], 8 * 64
    g = torch.Generator().manual_seed(0)
    tensors = {"model.embed_tokens.weight": torch.randn(v, d, generator=g).to(torch.bfloat16),
               "model.norm.weight": torch.ones(d, dtype=torch.bfloat16)}
    for i in range(layers):
        p = f"model.layers.{i}."
        shapes = {"self_attn.q_proj.weight": (d, d), "self_attn.k_proj.weight": (kv, d),
                  "self_attn.v_proj.weight": (kv, d), "self_attn.o_proj.weight": (d, d),
                  "mlp.gate_proj.weight": (f, d), "mlp.up_proj.weight": (f, d),
                  "mlp.down_proj.weight": (d, f), "input_layernorm.weight": (d,),
                  "post_attention_layernorm.weight": (d,)}
        for name, shape in shapes.items():
            tensors[p + name] = (0.02 * torch.randn(*shape, generator=g)).to(torch.bfloat16)
    folder.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps(cfg, indent=2))
    return sum(t.numel() for t in tensors.values())


def timed(command: list[str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS GiB, output) of one process under /usr/bin/time -v."""
    start = time.perf_counter()
    run = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if run.returncode != 0:
        sys.exit(f"failed ({run.returncode}): {' '.join(command)}\n{run.stdout}\n{run.stderr}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr).group(1))
    return wall, rss_kb / 2**20, run.stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", default="/tmp/attnlab_hf_bench")
    parser.add_argument("--out", default=None)
    parser.add_argument("--layers", type=int, default=16)
    args = parser.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    attnlab = str(REPO / "build" / "attnlab")

    t0 = time.perf_counter()
    params = write_checkpoint(work / "hf", args.layers)
    write_s = time.perf_counter() - t0
    source = work / "hf" / "model.safetensors"
    size = source.stat().st_size
    gib = size / 2**30
    print(f"synthetic checkpoint: {params / 1e9:.3f}e9 parameters, {gib:.2f} GiB, "
          f"written by safetensors in {write_s:.1f} s")

    # cp + sync: attnlab fsyncs what it writes (a crash never leaves half a model), so the floor
    # is a copy that reaches the disk too.
    copy = work / "copy.safetensors"
    cp_s, cp_rss, _ = timed(["sh", "-c", f"cp '{source}' '{copy}' && sync '{copy}'"])
    copy.unlink()
    cat_s, _, _ = timed(["sh", "-c", f"cat '{source}' > /dev/null"])
    imp_s, imp_rss, imp_out = timed([attnlab, "import", f"hf_dir={work / 'hf'}",
                                     f"out={work / 'imported'}", "dtype=bfloat16"])
    exp_s, exp_rss, exp_out = timed([attnlab, "export", "format=hf", "dtype=bfloat16",
                                     f"run_dir={work / 'imported'}", f"out={work / 'exported'}"])

    # Correctness: the exported tensors are the source's, bit for bit.
    mismatches = 0
    with safe_open(str(source), "pt") as a, safe_open(str(work / "exported" / "model.safetensors"),
                                                       "pt") as b:
        if set(a.keys()) != set(b.keys()):
            sys.exit(f"exported names differ: {sorted(set(a.keys()) ^ set(b.keys()))[:5]}")
        for name in a.keys():
            mismatches += not torch.equal(a.get_tensor(name), b.get_tensor(name))
    if mismatches:
        sys.exit(f"{mismatches} exported tensors differ from the source")

    rows = [
        ("cp + sync (read + write to disk, the floor)", cp_s, cp_rss),
        ("attnlab import (bf16)", imp_s, imp_rss),
        ("attnlab export format=hf (bf16)", exp_s, exp_rss),
    ]
    lines = [
        f"# attnlab import / export on a 1B Llama-shaped checkpoint",
        "",
        f"{datetime.date.today()}, {platform.node()}, {os.cpu_count()} cores; "
        f"`.venv/bin/python experiments/bench/hf_import_export.py`",
        "",
        f"Checkpoint: Llama-3.2-1B shapes, {args.layers} layers, {params / 1e9:.3f}e9 parameters, "
        f"bf16, one model.safetensors of {gib:.2f} GiB (random weights). `cat > /dev/null` of it: "
        f"{cat_s:.2f} s ({gib / cat_s:.2f} GiB/s, from the page cache when it is warm).",
        "",
        "| step | wall s | GiB/s of model | x cp | peak RSS GiB | RSS / model size |",
        "|---|---|---|---|---|---|",
    ]
    for name, seconds, rss in rows:
        lines.append(f"| {name} | {seconds:.2f} | {gib / seconds:.2f} | {seconds / cp_s:.2f} | "
                     f"{rss:.2f} | {rss / gib:.2f} |")
    lines += ["", "Every exported tensor equals the source's (checked with `safetensors`).",
              "Peak RSS includes the LibTorch runtime each attnlab command loads (~0.5 GiB)."]
    text = "\n".join(lines) + "\n"
    print(text)
    print(imp_out.strip(), exp_out.strip(), sep="\n")
    if args.out:
        Path(args.out).write_text(text)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
