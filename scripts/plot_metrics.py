#!/usr/bin/env python3
"""Plot train/val loss, the loss terms and the learning rate from an attnlab run's metrics.jsonl.

Usage: plot_metrics.py <run_dir> [out.png] [--series-json path]   (default out: <run_dir>/loss.png)

Top panel: train/loss, val/loss (with markers) and every loss term train/loss/<term> and
val/loss/<term> as thinner lines, y-axis fitted to the data; terms under a quarter of the smallest
train/val loss (balance terms) go on a right axis of their own. Bottom panel: lr against step.
--series-json writes exactly the plotted series as {label: [[step, value], ...]} (labels are the
metric keys: "train/loss", "val/loss", "train/loss/cross_entropy", "lr", ...).

Accepted record shapes (one JSON object per line, all with "step"):
  {"step": 10, "train/loss": 3.2, "train/loss/cross_entropy": 3.1, "lr": 3e-4}   (the trainer's)
  {"step": 50, "val/loss": 3.4, "val/loss/cross_entropy": 3.4, "val/perplexity": 30.0}
  {"step": 10, "train_loss": 3.2, "lr": 3e-4}   or  {"step": 10, "split": "train", "loss": 3.2}
  {"step": 50, "val_loss": 3.4}                  or  {"step": 50, "split": "val", "loss": 3.4}
A step logged twice (a resumed run re-logging steps past its checkpoint) keeps its last value;
non-numeric and non-finite values are left out.
Exit codes: 0 ok, 2 usage/unreadable file, 3 matplotlib missing, 4 nothing to plot.
"""
import json
import math
import os
import sys

TRAIN, VAL, LR = "train/loss", "val/loss", "lr"
VAL_SPLITS = ("val", "eval", "valid", "validation")


def _number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def series(records):
    """{label: [(step, value), ...]} sorted by step, last value per step; loss labels first."""
    points = {}  # label -> {step: value}

    def add(label, step, value):
        value = _number(value)
        if value is not None:
            points.setdefault(label, {})[step] = value

    for r in records:
        step = r.get("step")
        if isinstance(step, bool) or not isinstance(step, (int, float)):
            continue
        split = r.get("split")
        for key, value in r.items():
            if key in (TRAIN, VAL, LR) or key.startswith((TRAIN + "/", VAL + "/")):
                add(key, step, value)
            elif key == "train_loss":
                add(TRAIN, step, value)
            elif key == "val_loss":
                add(VAL, step, value)
            elif key == "loss" and split in (None, "train"):
                add(TRAIN, step, value)
            elif key == "loss" and split in VAL_SPLITS:
                add(VAL, step, value)
            elif key.endswith("/loss") and key.split("/")[0] in VAL_SPLITS:
                add(VAL, step, value)  # eval/loss, validation/loss, ...

    def order(label):  # train/loss, val/loss, then the terms by name, lr last
        rank = {TRAIN: 0, VAL: 1, LR: 3}.get(label, 2)
        return (rank, label)

    return {label: sorted(points[label].items()) for label in sorted(points, key=order)}


def parse_args(argv):
    """(run_dir, out, series_json) or None on a usage error."""
    positional, series_json = [], None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--series-json":
            if i + 1 >= len(argv) or series_json is not None:
                return None
            series_json = argv[i + 1]
            i += 2
            continue
        if arg.startswith("--series-json="):
            if series_json is not None:
                return None
            series_json = arg.split("=", 1)[1]
        elif arg.startswith("-"):
            return None
        else:
            positional.append(arg)
        i += 1
    if len(positional) not in (1, 2) or series_json == "":
        return None
    run_dir = positional[0]
    out = positional[1] if len(positional) == 2 else os.path.join(run_dir, "loss.png")
    return run_dir, out, series_json


def main():
    args = parse_args(sys.argv[1:])
    if args is None:
        print(__doc__, file=sys.stderr)
        return 2
    run_dir, out, series_json = args
    path = os.path.join(run_dir, "metrics.jsonl")
    try:
        with open(path) as f:
            records = [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError) as e:
        print(f"cannot read {path}: {e}", file=sys.stderr)
        return 2
    data = series(r for r in records if isinstance(r, dict))
    if not data:
        return 4
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return 3

    losses = {label: pts for label, pts in data.items() if label != LR}
    fig, (ax_loss, ax_lr) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True,
                                         gridspec_kw={"height_ratios": [3, 1]})
    # A term far below the total loss (a balance or z-loss term, ~0.01 next to ~3) would squash
    # every curve into the top of a y-axis starting near 0: such terms get their own right axis.
    totals = [v for label in (TRAIN, VAL) for _, v in losses.get(label, [])]
    floor = 0.25 * min(totals) if totals and min(totals) > 0 else None
    small = {label for label, pts in losses.items() if label not in (TRAIN, VAL)
             and floor is not None and max(abs(v) for _, v in pts) < floor}
    ax_small = ax_loss.twinx() if small else None
    term_colors = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"][2:] * 4)
    for label, pts in losses.items():
        xs, ys = zip(*pts)
        if label == TRAIN:
            ax_loss.plot(xs, ys, "-", color="tab:blue", linewidth=1.8, label=label, zorder=3)
        elif label == VAL:
            ax_loss.plot(xs, ys, "o-", color="tab:orange", linewidth=1.8, markersize=4,
                         label=label, zorder=4)
        else:  # a loss term: thinner, drawn on top (it may equal the total), dashed for val
            style = "--" if label.startswith(VAL + "/") else "-"
            ax = ax_small if label in small else ax_loss
            ax.plot(xs, ys, style, color=next(term_colors), linewidth=0.9, alpha=0.85,
                    label=label + (" (right axis)" if label in small else ""), zorder=5)

    def fit(ax, labels):  # y-limits around the data, not from 0
        values = [v for label in labels for _, v in losses[label]]
        low, high = min(values), max(values)
        pad = 0.05 * (high - low) if high > low else max(abs(high) * 0.05, 0.05)
        ax.set_ylim(low - pad, high + pad)

    if losses:
        fit(ax_loss, [label for label in losses if label not in small])
        handles, labels = ax_loss.get_legend_handles_labels()
        if ax_small is not None:
            fit(ax_small, sorted(small))
            ax_small.set_ylabel("small loss terms")
            more_handles, more_labels = ax_small.get_legend_handles_labels()
            handles, labels = handles + more_handles, labels + more_labels
        ax_loss.legend(handles, labels, fontsize="small", ncol=2 if len(losses) > 4 else 1)
    ax_loss.set_ylabel("loss")
    ax_loss.set_title(os.path.basename(os.path.normpath(run_dir)))
    ax_loss.grid(alpha=0.3)
    if LR in data:
        xs, ys = zip(*data[LR])
        ax_lr.plot(xs, ys, color="tab:green")
        ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    ax_lr.set_ylabel("lr")
    ax_lr.set_xlabel("step")
    ax_lr.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    if series_json is not None:
        try:
            with open(series_json, "w") as f:
                json.dump({label: [[step, value] for step, value in pts]
                           for label, pts in data.items()}, f, indent=1)
                f.write("\n")
        except OSError as e:
            print(f"cannot write {series_json}: {e}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
