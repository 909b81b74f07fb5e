#!/usr/bin/env python3
"""Plot train/val loss and learning rate from an attnlab run's metrics.jsonl.

Usage: plot_metrics.py <run_dir> [out.png]   (default out: <run_dir>/loss.png)

Accepted record shapes (one JSON object per line, all with "step"):
  {"step": 10, "train_loss": 3.2, "lr": 3e-4}   or  {"step": 10, "split": "train", "loss": 3.2}
  {"step": 50, "val_loss": 3.4}                  or  {"step": 50, "split": "val", "loss": 3.4}
Exit codes: 0 ok, 2 usage/unreadable file, 3 matplotlib missing, 4 nothing to plot.
"""
import json
import os
import sys


def series(records):
    train, val, lr = [], [], []
    for r in records:
        step = r.get("step")
        if step is None:
            continue
        split = r.get("split")
        if "train_loss" in r:
            train.append((step, r["train_loss"]))
        elif "loss" in r and split in (None, "train"):
            train.append((step, r["loss"]))
        if "val_loss" in r:
            val.append((step, r["val_loss"]))
        elif "loss" in r and split in ("val", "eval", "valid", "validation"):
            val.append((step, r["loss"]))
        if "lr" in r:
            lr.append((step, r["lr"]))
    return train, val, lr


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    run_dir = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) == 3 else os.path.join(run_dir, "loss.png")
    path = os.path.join(run_dir, "metrics.jsonl")
    try:
        with open(path) as f:
            records = [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError) as e:
        print(f"cannot read {path}: {e}", file=sys.stderr)
        return 2
    train, val, lr = series(records)
    if not (train or val or lr):
        return 4
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return 3

    fig, (ax_loss, ax_lr) = plt.subplots(2, 1, figsize=(8, 6), sharex=True,
                                         gridspec_kw={"height_ratios": [3, 1]})
    for data, label, style in ((train, "train loss", "-"), (val, "val loss", "o-")):
        if data:
            xs, ys = zip(*data)
            ax_loss.plot(xs, ys, style, label=label, markersize=3)
    ax_loss.set_ylabel("loss")
    ax_loss.set_title(os.path.basename(os.path.normpath(run_dir)))
    ax_loss.grid(alpha=0.3)
    if train or val:
        ax_loss.legend()
    if lr:
        xs, ys = zip(*lr)
        ax_lr.plot(xs, ys, color="tab:green")
    ax_lr.set_ylabel("lr")
    ax_lr.set_xlabel("step")
    ax_lr.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    return 0


if __name__ == "__main__":
    sys.exit(main())
