"""Length-extrapolation report: reads <runs>/<attention>/eval_<T>.json (written by run.sh) and
result.json for mha and lssar, writes results.md (markdown table) and extrapolation.png
(validation loss against evaluation length, log2 x axis) into <out>.
Usage: report.py RUNS OUT [--steps N --batch B --model TEXT]"""
import argparse
import json
import math
import os

ATTENTIONS = ["mha", "lssar"]


def load(runs, attention):
    run = os.path.join(runs, attention)
    rows = {}
    for name in os.listdir(run):
        if name.startswith("eval_") and name.endswith(".json"):
            with open(os.path.join(run, name)) as f:
                for r in json.load(f)["results"]:
                    rows[r["seq_len"]] = r
    with open(os.path.join(run, "result.json")) as f:
        result = json.load(f)
    return rows, result


def main():
    p = argparse.ArgumentParser()
    p.add_argument("runs")
    p.add_argument("out")
    p.add_argument("--steps", default="?")
    p.add_argument("--batch", default="?")
    p.add_argument("--model", default="")
    a = p.parse_args()
    data = {att: load(a.runs, att) for att in ATTENTIONS}
    lens = sorted(set().union(*[set(rows) for rows, _ in data.values()]))
    train_len = 128
    lines = [
        f"Trained at T = {train_len} on Moby Dick (byte tokenizer), {a.model}, batch {a.batch}, "
        f"{a.steps} steps, same seed and settings for both; evaluated on the same first 65,536 "
        "validation tokens at every length. Validation loss in nats/token (bits per byte in "
        "parentheses).",
        "",
        "| attention | " + " | ".join(f"T={t} ({t // train_len}x)" for t in lens) +
        " | loss(2048) - loss(128) | train tok/s (shared 2-core machine) |",
        "|---|" + "---|" * (len(lens) + 2),
    ]
    for att, (rows, result) in data.items():
        cells = [f"{rows[t]['val_loss']:.4f} ({rows[t]['val_bits_per_byte']:.3f})"
                 if t in rows else "-" for t in lens]
        delta = (rows[lens[-1]]["val_loss"] - rows[lens[0]]["val_loss"]
                 if lens[0] in rows and lens[-1] in rows else math.nan)
        lines.append(f"| {att} | " + " | ".join(cells) +
                     f" | {delta:+.4f} | {result['tokens_per_s']:.0f} |")
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for att, (rows, _) in data.items():
        xs = [t for t in lens if t in rows]
        ax.plot(xs, [rows[t]["val_loss"] for t in xs], marker="o", label=att)
    ax.axvline(train_len, color="gray", linestyle=":", label="training length")
    ax.set_xscale("log", base=2)
    ax.set_xticks(lens)
    ax.set_xticklabels([str(t) for t in lens])
    ax.set_xlabel("evaluation length T (tokens)")
    ax.set_ylabel("validation loss (nats/token)")
    ax.set_title(f"Length extrapolation, trained at T={train_len} (Moby Dick, bytes)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(a.out, "extrapolation.png"), dpi=120)


if __name__ == "__main__":
    main()
