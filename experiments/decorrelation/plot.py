"""Curves and table of the decorrelation experiment (run.sh): reads metrics.jsonl and result.json
of the baseline and decorrelation runs, draws decorrelation.png (per block: mean cosine of each
token's hidden state to position 0's, max |activation|; and the validation loss) and writes
results.md (final values; the BOS-cosine / max-activation columns average the last 5 logged
training steps, i.e. the last 50 steps, to smooth batch noise).

With several seeds (pairs of runs, one pair per seed), results.md also gets one row per seed and
the paired difference decorrelation - baseline over seeds: mean, 95% t interval and the paired
t-test's p (scipy.stats), for the validation loss and each block's BOS cosine.

    plot.py BASELINE_RUN DECORR_RUN [BASELINE_RUN DECORR_RUN ...] --out DIR [--seeds S ...]
            [--seconds N]
"""
import argparse
import json
import os
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(run):
    with open(os.path.join(run, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f if line.strip()]
    with open(os.path.join(run, "result.json")) as f:
        result = json.load(f)
    return records, result


def series(records, key):
    points = [(r["step"], r[key]) for r in records if key in r]
    return [p[0] for p in points], [p[1] for p in points]


def layers(records, stat):
    found = set()
    for r in records:
        for k in r:
            m = re.fullmatch(r"train/stat/%s/layer(\d+)" % stat, k)
            if m:
                found.add(int(m.group(1)))
    return sorted(found)


def tail_mean(records, key, n=5):
    _, values = series(records, key)
    values = values[-n:]
    return sum(values) / len(values)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="+", help="baseline and decorrelation run of each seed")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seeds", nargs="*", default=[])
    parser.add_argument("--seconds", type=int, default=0)
    args = parser.parse_args()
    if len(args.runs) % 2:
        parser.error("runs come in pairs: baseline, decorrelation")
    args.baseline, args.decorr = args.runs[0], args.runs[1]
    runs = {"baseline (CE)": load(args.baseline), "decorrelation (CE + L_dec)": load(args.decorr)}
    styles = {"baseline (CE)": "-", "decorrelation (CE + L_dec)": "--"}

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    for name, (records, _) in runs.items():
        for layer in layers(records, "bos_cos"):
            steps, values = series(records, "train/stat/bos_cos/layer%d" % layer)
            axes[0].plot(steps, values, styles[name], color="C%d" % layer,
                         label="%s, block %d" % (name.split()[0], layer))
            steps, values = series(records, "train/stat/max_act/layer%d" % layer)
            axes[1].plot(steps, values, styles[name], color="C%d" % layer,
                         label="%s, block %d" % (name.split()[0], layer))
        steps, values = series(records, "val/loss")
        axes[2].plot(steps, values, styles[name], color="k", marker="o", label=name)
    axes[0].set_title("mean cos(h[pos 0], h[s]) per block (training batches)")
    axes[1].set_title("max |activation| of block output")
    axes[2].set_title("validation loss (nats/byte)")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "decorrelation.png"), dpi=110)

    (base_records, base), (dec_records, dec) = runs.values()
    blocks = layers(base_records, "bos_cos")
    lines = ["| run | val loss | val ppl | val bpb | " +
             " | ".join("BOS cos b%d" % l for l in blocks) + " | " +
             " | ".join("max act b%d" % l for l in blocks) + " | tok/s |",
             "|---|---:|---:|---:|" + "---:|" * (2 * len(blocks)) + "---:|"]
    for name, (records, result) in runs.items():
        cos = ["%.3f" % tail_mean(records, "train/stat/bos_cos/layer%d" % l) for l in blocks]
        act = ["%.1f" % tail_mean(records, "train/stat/max_act/layer%d" % l) for l in blocks]
        lines.append("| %s | %.4f | %.3f | %.4f | %s | %s | %.0f |" % (
            name, result["val_loss"], result["val_perplexity"], result["val_bits_per_byte"],
            " | ".join(cos), " | ".join(act), result["tokens_per_s"]))
    cost = dec["val_loss"] - base["val_loss"]
    lines.append("")
    lines.append("Validation-loss cost of the decorrelation loss at step %d: %+.4f nats/byte "
                 "(%+.2f%%)." % (dec["step"], cost, 100 * cost / base["val_loss"]))
    pairs = [(load(args.runs[i]), load(args.runs[i + 1])) for i in range(0, len(args.runs), 2)]
    if len(pairs) > 1:
        from scipy import stats
        seeds = args.seeds if len(args.seeds) == len(pairs) else [str(i) for i in range(len(pairs))]
        lines += ["", "Every seed (the BOS cosine averages the last 5 logged steps):", "",
                  "| seed | val loss CE | val loss CE + L_dec | Δ | " +
                  " | ".join("BOS cos b%d CE -> dec" % l for l in blocks) + " |",
                  "|---|---:|---:|---:|" + "---|" * len(blocks)]
        deltas = {"val loss": []}
        for l in blocks:
            deltas["BOS cos b%d" % l] = []
        for seed, ((b_rec, b_res), (d_rec, d_res)) in zip(seeds, pairs):
            deltas["val loss"].append(d_res["val_loss"] - b_res["val_loss"])
            cells = []
            for l in blocks:
                key = "train/stat/bos_cos/layer%d" % l
                b, d = tail_mean(b_rec, key), tail_mean(d_rec, key)
                deltas["BOS cos b%d" % l].append(d - b)
                cells.append("%.3f -> %.3f" % (b, d))
            lines.append("| %s | %.4f | %.4f | %+.4f | %s |" % (
                seed, b_res["val_loss"], d_res["val_loss"], d_res["val_loss"] - b_res["val_loss"],
                " | ".join(cells)))
        n = len(pairs)
        lines += ["", "Paired difference (decorrelation - baseline) over %d seeds:" % n, "",
                  "| quantity | mean Δ | 95% CI | p (paired t) |", "|---|---:|---|---:|"]
        for name, values in deltas.items():
            mean = sum(values) / n
            sd = (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5
            half = stats.t.ppf(0.975, n - 1) * sd / n ** 0.5
            p = stats.ttest_1samp(values, 0.0).pvalue if sd > 0 else float("nan")
            lines.append("| %s | %+.4f | [%+.4f, %+.4f] | %.3g |" % (name, mean, mean - half,
                                                                   mean + half, p))
    if args.seconds:
        lines.append("")
        lines.append("All runs: %d s (each on one thread, a seed's two runs side by side)."
                     % args.seconds)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
