"""AR -> dLM report over seeds: reads the eval.json copies run.sh left in RUNS/seed<k>/ (ar_nll,
ar_weights_as_dlm, converted, scratch) and writes results.md into OUT: per row the mean over seeds
with a 95% t interval, each seed's value, and the paired difference converted - scratch (mean,
95% interval, paired t-test p from scipy.stats).
Usage: report.py RUNS OUT --steps N --block B --t-samples K --ar-runs DIR --seeds "1 2 3" """
import argparse
import json
import os

from scipy import stats

ROWS = [
    ("ar_nll", "AR model, exact NLL (autoregressive eval)"),
    ("ar_weights_as_dlm", "AR weights as a dLM, before diffusion training: NELBO"),
    ("converted", "after AR -> dLM conversion training (init_from): NELBO"),
    ("scratch", "dLM trained from scratch, same steps (reference): NELBO"),
]


def mean_ci(values):
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, float("nan"), float("nan")
    sd = stats.tstd(values)
    half = stats.t.ppf(0.975, n - 1) * sd / n ** 0.5
    return mean, half, sd


def cell(values):
    """'mean ± 95% half-width' of `values` (just the mean for one value)."""
    mean, half, _ = mean_ci(values)
    return f"{mean:.4f}" + (f" ± {half:.4f}" if half == half else "")


def load(runs, seed, key):
    path = os.path.join(runs, f"seed{seed}", key + ".json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)["results"][0]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("runs")
    p.add_argument("out")
    p.add_argument("--steps", required=True)
    p.add_argument("--block", required=True)
    p.add_argument("--t-samples", required=True)
    p.add_argument("--ar-runs", required=True)
    p.add_argument("--seeds", required=True)
    a = p.parse_args()
    seeds = a.seeds.split()
    lines = [
        f"AR models: `{os.path.relpath(a.ar_runs)}/seed<k>` (T = 128), one per seed k in "
        f"{', '.join(seeds)}; each seed's dLMs train with that seed. dLM: `objective=masked_diffusion "
        f"model.mask=block_causal model.block_size={a.block}`, {a.steps} training steps. "
        "All rows on the same first 65,536 validation tokens (32 batches x 16 windows of 128). "
        f"NELBO = masked-diffusion bound per predicted token, {a.t_samples} (t, mask) draws per "
        "window from the evaluator's fixed seed (attnlab eval, eval.t_samples). Mean over seeds "
        "± half-width of the 95% t interval.",
        "",
        "| model | nats/token (mean ± 95% CI) | per seed | bits/byte (mean) |",
        "|---|---|---|---|",
    ]
    values = {}
    for key, label in ROWS:
        rows = [load(a.runs, s, key) for s in seeds]
        if any(r is None for r in rows):
            continue
        losses = [r["val_loss"] for r in rows]
        values[key] = losses
        bpb = sum(r["val_bits_per_byte"] for r in rows) / len(rows)
        lines.append(f"| {label} | {cell(losses)} | {' / '.join(f'{v:.4f}' for v in losses)} | "
                     f"{bpb:.4f} |")
    if "converted" in values and "scratch" in values:
        diffs = [c - s for c, s in zip(values["converted"], values["scratch"])]
        mean, half, sd = mean_ci(diffs)
        lines.append("")
        if len(diffs) >= 2 and sd > 0:
            pvalue = stats.ttest_rel(values["converted"], values["scratch"]).pvalue
            lines.append(f"Paired difference converted − scratch over {len(diffs)} seeds: "
                         f"{mean:+.4f} nats/token, 95% CI [{mean - half:+.4f}, {mean + half:+.4f}], "
                         f"paired t-test p = {pvalue:.2g}.")
        else:
            lines.append(f"Difference converted − scratch: {mean:+.4f} nats/token "
                         f"({len(diffs)} seed(s): no interval).")
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
