"""AR -> dLM report: reads the eval.json copies run.sh left in RUNS (ar_nll, ar_weights_as_dlm,
converted, scratch) and writes results.md (markdown table) into OUT.
Usage: report.py RUNS OUT --steps N --block B --t-samples K --ar-run DIR"""
import argparse
import json
import os

ROWS = [
    ("ar_nll", "AR model, exact NLL (autoregressive eval)"),
    ("ar_weights_as_dlm", "AR weights as a dLM, before diffusion training: NELBO"),
    ("converted", "after AR -> dLM conversion training (init_from): NELBO"),
    ("scratch", "dLM trained from scratch, same steps (reference): NELBO"),
]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("runs")
    p.add_argument("out")
    p.add_argument("--steps", required=True)
    p.add_argument("--block", required=True)
    p.add_argument("--t-samples", required=True)
    p.add_argument("--ar-run", required=True)
    a = p.parse_args()
    lines = [
        f"AR model: `{os.path.relpath(a.ar_run)}` (T = 128). dLM: `objective=masked_diffusion "
        f"attention.mask=block_causal attention.block_size={a.block}`, {a.steps} training steps. "
        "All rows on the same first 65,536 validation tokens (32 batches x 16 windows of 128). "
        f"NELBO = masked-diffusion bound per predicted token, {a.t_samples} (t, mask) draws per "
        "window from the evaluator's fixed seed (attnlab eval, eval.t_samples).",
        "",
        "| model | nats/token | bits/byte | perplexity |",
        "|---|---|---|---|",
    ]
    for key, label in ROWS:
        path = os.path.join(a.runs, key + ".json")
        if not os.path.exists(path):
            continue
        with open(path) as f:
            r = json.load(f)["results"][0]
        lines.append(f"| {label} | {r['val_loss']:.4f} | {r['val_bits_per_byte']:.4f} | "
                     f"{r['val_perplexity']:.2f} |")
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
