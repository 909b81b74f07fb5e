#!/usr/bin/env python3
"""attnlab's one plotting script: a run's curves (`attnlab plot`) and a sweep's comparison
(`attnlab summarize` and the end of every sweep, launch/sweep_summary.cpp). Both modes read
metrics.jsonl through the same reader (series()), so a key the run plot understands is one the
sweep plot understands too; the C++ side holds no Python and runs this file with the project
Python (common/subprocess.h: project_python(), project_script()).

Run mode: plot_metrics.py <run_dir> [out.png] [--series-json path]   (default out: <run_dir>/loss.png)

  Top panel: train/loss, val/loss (with markers) and every logged loss term as thinner lines —
  train/loss/<term>, val/loss/<term> and the modules' auxiliary losses train/aux/<name> (MoH's
  train/aux/moh_balance, ...) — y-axis fitted to the data; terms under a quarter of the smallest
  train/val loss (balance terms) go on a right axis of their own. Classification runs
  (task=classification) get a middle panel with what the task logs at each evaluation,
  val/accuracy and val/macro_f1, and the final model's test/accuracy and test/macro_f1 as stars
  (per-class precision/recall/F1 are in the run's classification_metrics.md, not drawn). Bottom
  panel: lr against step. --series-json writes exactly the plotted series as
  {label: [[step, value], ...]} (labels are the metric keys: "train/loss", "val/loss",
  "train/loss/cross_entropy", "train/aux/moh_balance", "val/accuracy", "lr", ...).

Sweep mode: plot_metrics.py --sweep <plot_data.json> <out.png> [--series-json path]

  plot_data.json (written by launch/sweep_summary.cpp): {"metric": <headline metric>,
  "rows": [{"name": <row label>, "n": <jobs>, "mean": <number or null>, "std": <number>}],
  "common": <overrides every row shares>, "jobs": [{"config": <row label>, "metrics":
  <a job's metrics.jsonl>}]}. Left: the headline metric per row as a point with a ±std bar
  (sample std over seeds) on an axis fitted to the data (not from 0). Right: each row's loss
  curve over every logged evaluation (val/loss, else train/loss), per step the mean over the
  row's jobs that logged it with a ±std band. --series-json writes what was drawn, read back
  from the figure's axes: {"metric", "points": {row: [mean, std]}, "points_xlim",
  "curve_key", "curves": {"<row> (n=<jobs>)": [[step, mean], ...]}, "curve_ylim"}.

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
import textwrap

TRAIN, VAL, LR = "train/loss", "val/loss", "lr"
VAL_SPLITS = ("val", "eval", "valid", "validation")
# Loss terms: the LossSet's terms and the modules' auxiliary losses, train and val.
TERM_PREFIXES = (TRAIN + "/", VAL + "/", "train/aux/", "val/aux/")
# What a classification run logs per evaluation (val/) and once for the final model (test/).
CLASSIFICATION = ("val/accuracy", "val/macro_f1", "test/accuracy", "test/macro_f1")


def _number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def read_records(path, skip_bad_lines=False):
    """The JSON objects of a metrics.jsonl. A line that is not JSON raises ValueError, or with
    skip_bad_lines (a sweep job still writing its last line) is left out."""
    records = []
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                if skip_bad_lines:
                    continue
                raise
            if isinstance(record, dict):
                records.append(record)
    return records


def is_term(label):
    return label.startswith(TERM_PREFIXES)


def series(records):
    """{label: [(step, value), ...]} sorted by step, last value per step; in drawing order:
    train/loss, val/loss, the loss terms, the classification metrics, lr."""
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
            if key in (TRAIN, VAL, LR) or key in CLASSIFICATION or is_term(key):
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

    def order(label):
        if label in CLASSIFICATION:
            return (3, CLASSIFICATION.index(label), label)
        return ({TRAIN: 0, VAL: 1, LR: 4}.get(label, 2), 0, label)

    return {label: sorted(points[label].items()) for label in sorted(points, key=order)}


def parse_args(argv):
    """(mode, positional, series_json) or None on a usage error; mode is "run" or "sweep"."""
    positional, series_json, mode = [], None, "run"
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--sweep":
            mode = "sweep"
        elif arg == "--series-json":
            if i + 1 >= len(argv) or series_json is not None:
                return None
            series_json = argv[i + 1]
            i += 2
            continue
        elif arg.startswith("--series-json="):
            if series_json is not None:
                return None
            series_json = arg.split("=", 1)[1]
        elif arg.startswith("-"):
            return None
        else:
            positional.append(arg)
        i += 1
    if series_json == "":
        return None
    if mode == "run" and len(positional) not in (1, 2):
        return None
    if mode == "sweep" and len(positional) != 2:
        return None
    return mode, positional, series_json


def import_pyplot():
    """matplotlib.pyplot on the Agg backend, or None when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def write_json(path, data):
    """0, or 2 with a message when the file cannot be written."""
    try:
        with open(path, "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
    except OSError as e:
        print(f"cannot write {path}: {e}", file=sys.stderr)
        return 2
    return 0


def fit_ylim(ax, values):
    """y-limits around the data, not from 0."""
    low, high = min(values), max(values)
    pad = 0.05 * (high - low) if high > low else max(abs(high) * 0.05, 0.05)
    ax.set_ylim(low - pad, high + pad)


def plot_run(run_dir, out, series_json):
    path = os.path.join(run_dir, "metrics.jsonl")
    try:
        records = read_records(path)
    except (OSError, ValueError) as e:
        print(f"cannot read {path}: {e}", file=sys.stderr)
        return 2
    data = series(records)
    if not data:
        return 4
    plt = import_pyplot()
    if plt is None:
        return 3

    losses = {label: pts for label, pts in data.items() if label not in CLASSIFICATION + (LR,)}
    scores = {label: pts for label, pts in data.items() if label in CLASSIFICATION}
    if scores:
        fig, (ax_loss, ax_score, ax_lr) = plt.subplots(
            3, 1, figsize=(9, 8.5), sharex=True, gridspec_kw={"height_ratios": [3, 1.6, 1]})
    else:
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
            style = "--" if label.startswith("val/") else "-"
            ax = ax_small if label in small else ax_loss
            ax.plot(xs, ys, style, color=next(term_colors), linewidth=0.9, alpha=0.85,
                    label=label + (" (right axis)" if label in small else ""), zorder=5)

    if losses:
        fit_ylim(ax_loss, [v for label in losses if label not in small for _, v in losses[label]])
        handles, labels = ax_loss.get_legend_handles_labels()
        if ax_small is not None:
            fit_ylim(ax_small, [v for label in small for _, v in losses[label]])
            ax_small.set_ylabel("small loss terms")
            more_handles, more_labels = ax_small.get_legend_handles_labels()
            handles, labels = handles + more_handles, labels + more_labels
        ax_loss.legend(handles, labels, fontsize="small", ncol=2 if len(losses) > 4 else 1)
    ax_loss.set_ylabel("loss")
    ax_loss.set_title(os.path.basename(os.path.normpath(run_dir)))
    ax_loss.grid(alpha=0.3)

    if scores:
        colors = {"accuracy": "tab:purple", "macro_f1": "tab:brown"}
        for label, pts in scores.items():
            xs, ys = zip(*pts)
            color = colors[label.split("/", 1)[1]]
            if label.startswith("test/"):  # once, for the final model
                ax_score.plot(xs, ys, "*", color=color, markersize=11, label=label + " (final)",
                              zorder=4)
            else:
                ax_score.plot(xs, ys, "o-", color=color, linewidth=1.5, markersize=4,
                              label=label, zorder=3)
        fit_ylim(ax_score, [v for pts in scores.values() for _, v in pts])
        ax_score.set_ylabel("accuracy / macro-F1")
        ax_score.legend(fontsize="small", ncol=2)
        ax_score.grid(alpha=0.3)

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
        return write_json(series_json, {label: [[step, value] for step, value in pts]
                                        for label, pts in data.items()})
    return 0


def mean_std(values):
    """The mean and the sample standard deviation (n - 1; 0 for one value)."""
    m = sum(values) / len(values)
    s = (math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))
         if len(values) > 1 else 0.0)
    return m, s


def sweep_curves(jobs):
    """(key, {row label: [{step: value} per job]}): every job's val/loss, or train/loss when no
    job logged val/loss, as series() reads it."""
    per_job = []
    for job in jobs:
        try:
            data = series(read_records(job["metrics"], skip_bad_lines=True))
        except OSError:
            continue
        per_job.append((job["config"], data))
    for key in (VAL, TRAIN):
        runs = {}
        for config, data in per_job:
            if data.get(key):
                runs.setdefault(config, []).append(dict(data[key]))
        if runs:
            return key, runs
    return None, {}


def plot_sweep(data_path, out, series_json):
    try:
        with open(data_path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        print(f"cannot read {data_path}: {e}", file=sys.stderr)
        return 2
    rows = [r for r in data["rows"] if r["mean"] is not None]
    if not rows:
        return 4
    plt = import_pyplot()
    if plt is None:
        return 3
    curve_key, runs = sweep_curves(data["jobs"])

    fig, axes = plt.subplots(1, 2 if runs else 1, figsize=(12 if runs else 7, 4.5))
    axes = list(axes) if runs else [axes]
    # Long labels wrap instead of squashing the axes.
    names = [textwrap.fill(r["name"], 40, break_long_words=False) for r in rows]
    # Points with error bars (bars would have to start at 0, which hides the differences).
    points = axes[0].errorbar([r["mean"] for r in rows], range(len(rows)),
                              xerr=[r["std"] for r in rows], fmt="o", color="tab:blue", capsize=3)
    axes[0].grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(rows)))
    axes[0].set_yticklabels(names, fontsize=8)
    axes[0].invert_yaxis()
    axes[0].set_xlabel(data["metric"] + " (mean ± std over seeds)")
    # Fit the axis to the data: the differences between configurations are what matters.
    lo = min(r["mean"] - r["std"] for r in rows)
    hi = max(r["mean"] + r["std"] for r in rows)
    pad = 0.08 * (hi - lo) if hi > lo else 0.05 * max(abs(hi), 1e-12)
    axes[0].set_xlim(lo - pad, hi + pad)
    if data.get("common"):
        fig.suptitle("all rows: " + data["common"], fontsize=8)
    curves = {}
    if runs:
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for i, (name, group) in enumerate(runs.items()):
            steps = sorted(set(s for points_of_job in group for s in points_of_job))
            stats = [mean_std([p[s] for p in group if s in p]) for s in steps]
            color = colors[i % len(colors)]
            axes[1].plot(steps, [m for m, _ in stats], color=color,
                         marker="o" if len(steps) < 30 else None, markersize=3,
                         label=f"{name} (n={len(group)})")
            if len(group) > 1:
                axes[1].fill_between(steps, [m - s for m, s in stats],
                                     [m + s for m, s in stats], color=color, alpha=0.2)
        axes[1].set_xlabel("step")
        axes[1].set_ylabel(curve_key + " (mean ± std over seeds)")
        # Below the axes: long configuration labels would cover the curves.
        axes[1].legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=1)
        for line in axes[1].get_lines():
            curves[line.get_label()] = [[float(x), float(y)] for x, y in
                                        zip(line.get_xdata(), line.get_ydata())]
    fig.tight_layout()
    fig.savefig(out, dpi=110, bbox_inches="tight")
    if series_json is None:
        return 0
    # What the figure holds, read back from its axes (the tests check these, not only the PNG).
    drawn = {row["name"]: [float(x), row["std"]]
             for row, x in zip(rows, points.lines[0].get_xdata())}
    return write_json(series_json, {
        "metric": data["metric"], "points": drawn,
        "points_xlim": [float(v) for v in axes[0].get_xlim()],
        "curve_key": curve_key, "curves": curves,
        "curve_ylim": [float(v) for v in axes[1].get_ylim()] if runs else None})


def main():
    args = parse_args(sys.argv[1:])
    if args is None:
        print(__doc__, file=sys.stderr)
        return 2
    mode, positional, series_json = args
    if mode == "sweep":
        return plot_sweep(positional[0], positional[1], series_json)
    run_dir = positional[0]
    out = positional[1] if len(positional) == 2 else os.path.join(run_dir, "loss.png")
    return plot_run(run_dir, out, series_json)


if __name__ == "__main__":
    sys.exit(main())
