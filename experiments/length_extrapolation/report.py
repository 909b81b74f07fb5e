"""Length-extrapolation report: reads eval_<T>.json (written by run.sh), result.json and, when
there, the run's log (<run dir>.log, for the wall times) of the mha and lssar run of each seed,
and writes results.md and extrapolation.png (validation loss against evaluation length, log2 x
axis: the mean over seeds with its 95% t band, each seed faint; left the loss, right each run's
loss(T) - loss(128)) into --out.

results.md: the mean and 95% t interval over seeds of each arm's loss at every length and of its
loss(2048) - loss(128); every seed's numbers; the paired difference LSSAR - MHA over seeds (mean,
95% t interval, paired t-test p from scipy.stats) of loss(128), loss(2048) and loss(2048) -
loss(128); and the verdict that difference gives on the claim (softplus attention with
re-weighting extrapolates better): held / reversed when p < 0.05, not shown otherwise. With one
seed there is no interval and no test, and the report says so.

    report.py MHA_RUN LSSAR_RUN [MHA_RUN LSSAR_RUN ...] --out DIR [--seeds S ...]
              [--steps N --batch B --model TEXT --seconds N --parallel P]
"""
import argparse
import json
import math
import os
import re

ATTENTIONS = ["mha", "lssar"]
TRAIN_LEN = 128


def load(run):
    rows = {}
    for name in os.listdir(run):
        if name.startswith("eval_") and name.endswith(".json"):
            with open(os.path.join(run, name)) as f:
                for r in json.load(f)["results"]:
                    rows[r["seq_len"]] = r["val_loss"]
    with open(os.path.join(run, "result.json")) as f:
        result = json.load(f)
    walls = {}
    log = run.rstrip("/") + ".log"
    if os.path.exists(log):
        with open(log) as f:
            for m in re.finditer(r"(train|eval) wall time (\d+) s", f.read()):
                walls[m.group(1)] = int(m.group(2))
    return {"loss": rows, "result": result, "wall": walls}


def summary(values):
    """mean, half-width of the 95% t interval (nan for one value), sample sd."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan, math.nan
    from scipy import stats
    sd = (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5
    return mean, stats.t.ppf(0.975, n - 1) * sd / n ** 0.5, sd


def paired_p(diffs):
    if len(diffs) < 2:
        return math.nan
    from scipy import stats
    if max(diffs) == min(diffs):
        return math.nan
    return float(stats.ttest_1samp(diffs, 0.0).pvalue)


def cell(values, digits=4):
    mean, half, _ = summary(values)
    if math.isnan(half):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {half:.{digits}f}"


def signed(values, digits=4):
    mean, half, _ = summary(values)
    if math.isnan(half):
        return f"{mean:+.{digits}f}"
    return f"{mean:+.{digits}f} ± {half:.{digits}f}"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("runs", nargs="+", help="the mha and the lssar run of each seed, in that order")
    p.add_argument("--out", required=True)
    p.add_argument("--seeds", nargs="*", default=[])
    p.add_argument("--steps", default="?")
    p.add_argument("--batch", default="?")
    p.add_argument("--model", default="")
    p.add_argument("--seconds", type=int, default=0)
    p.add_argument("--parallel", type=int, default=0)
    a = p.parse_args()
    if len(a.runs) % 2:
        p.error("runs come in pairs: mha, lssar")
    pairs = [(load(a.runs[i]), load(a.runs[i + 1])) for i in range(0, len(a.runs), 2)]
    n = len(pairs)
    seeds = a.seeds if len(a.seeds) == n else [str(i) for i in range(n)]
    runs = {att: [pair[k] for pair in pairs] for k, att in enumerate(ATTENTIONS)}
    lens = sorted(set.intersection(*[set(r["loss"]) for rs in runs.values() for r in rs]))
    first, last = lens[0], lens[-1]

    def losses(att, t):
        return [r["loss"][t] for r in runs[att]]

    def delta(att):
        return [r["loss"][last] - r["loss"][first] for r in runs[att]]

    ci = "mean ± 95% t interval over the seeds" if n > 1 else "one seed, no interval"
    lines = [
        f"Trained at T = {TRAIN_LEN} on Moby Dick (byte tokenizer), {a.model}, batch {a.batch}, "
        f"{a.steps} steps, the same settings for both arms; {n} seed{'s' if n > 1 else ''} "
        f"({', '.join(seeds)}; both arms of a seed share it). Evaluated on the same "
        "first 65,536 validation tokens at every length. Validation loss in nats/token "
        f"({ci}).",
        "",
        "| attention | " + " | ".join(f"T={t} ({t // TRAIN_LEN}x)" for t in lens) +
        f" | loss({last}) - loss({first}) |",
        "|---|" + "---:|" * (len(lens) + 1),
    ]
    for att in ATTENTIONS:
        lines.append(f"| {att} | " + " | ".join(cell(losses(att, t)) for t in lens) +
                     f" | {signed(delta(att))} |")

    lines += ["", "Every seed (train tok/s and wall times on the shared 2-core machine, "
              f"{a.parallel or '?'} runs at a time: not a speed comparison):", "",
              "| seed | attention | " + " | ".join(f"T={t}" for t in lens) +
              f" | loss({last}) - loss({first}) | train tok/s | train s | eval s |",
              "|---|---|" + "---:|" * (len(lens) + 4)]
    for i, seed in enumerate(seeds):
        for att in ATTENTIONS:
            r = runs[att][i]
            wall = [str(r["wall"].get(k, "-")) for k in ("train", "eval")]
            lines.append(f"| {seed} | {att} | " +
                         " | ".join(f"{r['loss'][t]:.4f}" for t in lens) +
                         f" | {r['loss'][last] - r['loss'][first]:+.4f} | "
                         f"{r['result']['tokens_per_s']:.0f} | {wall[0]} | {wall[1]} |")

    quantities = {
        f"loss({first})": [l - m for l, m in zip(losses("lssar", first), losses("mha", first))],
        f"loss({last})": [l - m for l, m in zip(losses("lssar", last), losses("mha", last))],
        f"loss({last}) - loss({first})": [l - m for l, m in zip(delta("lssar"), delta("mha"))],
    }
    key = quantities[f"loss({last}) - loss({first})"]
    mean, half, _ = summary(key)
    p_key = paired_p(key)
    if n > 1:
        lines += ["", f"Paired difference LSSAR - MHA over {n} seeds (negative: LSSAR lower):", "",
                  "| quantity | per seed | mean | 95% CI | p (paired t) |",
                  "|---|---|---:|---|---:|"]
        for name, values in quantities.items():
            m, h, _ = summary(values)
            lines.append(f"| {name} | " + ", ".join(f"{v:+.4f}" for v in values) +
                         f" | {m:+.4f} | [{m - h:+.4f}, {m + h:+.4f}] | {paired_p(values):.3g} |")
        wins = sum(d < 0 for d in key)
        interval = f"{mean:+.4f} nats, 95% CI [{mean - half:+.4f}, {mean + half:+.4f}]"
        if p_key < 0.05 and mean < 0:
            verdict = (f"**Held at this scale** ({n} seeds): LSSAR's loss grows less from "
                       f"T={first} to T={last} than MHA's, by {interval}, paired t-test "
                       f"p = {p_key:.3g}; LSSAR lower on {wins} of {n} seeds.")
        elif p_key < 0.05:
            verdict = (f"**Reversed at this scale** ({n} seeds): LSSAR's loss grows more from "
                       f"T={first} to T={last} than MHA's, by {interval}, paired t-test "
                       f"p = {p_key:.3g}.")
        else:
            verdict = (f"**Not shown at this scale** ({n} seeds): the paired difference of "
                       f"loss({last}) - loss({first}), LSSAR - MHA, is {interval}, paired "
                       f"t-test p = {p_key:.3g} (LSSAR lower on {wins} of {n} seeds): the "
                       "interval includes 0.")
    else:
        verdict = (f"One seed: loss({last}) - loss({first}) is {delta('lssar')[0]:+.4f} (LSSAR) "
                   f"vs {delta('mha')[0]:+.4f} (MHA); one seed has no interval and decides "
                   "nothing.")
    lines += ["", "Claim (softplus attention with re-weighting extrapolates better): " + verdict]
    lines += ["", f"At {last // first}x the training length the loss is "
              f"{signed(delta('mha'), 3)} (MHA) and {signed(delta('lssar'), 3)} (LSSAR) nats "
              f"from its value at T={first} (the paper's claim is a nearly constant loss)."]
    if a.seconds:
        lines += ["", f"All runs (training + evaluation): {a.seconds} s, one thread each, "
                  f"{a.parallel or '?'} at a time."]
    with open(os.path.join(a.out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    # Left: the loss itself; right: each run's loss minus its own loss at T=128 (the
    # extrapolation cost, whose seed-to-seed spread is smaller than that of the loss level).
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4))
    for ax, relative in zip(axes, (False, True)):
        for k, att in enumerate(ATTENTIONS):
            color = f"C{k}"
            curves = [[r["loss"][t] - (r["loss"][first] if relative else 0.0) for t in lens]
                      for r in runs[att]]
            for curve in curves:
                ax.plot(lens, curve, color=color, alpha=0.25, linewidth=0.8)
            stats = [summary([c[i] for c in curves]) for i in range(len(lens))]
            means = [s[0] for s in stats]
            ax.plot(lens, means, color=color, marker="o",
                    label=f"{att} (mean of {n})" if n > 1 else att)
            if n > 1:
                ax.fill_between(lens, [m - s[1] for m, s in zip(means, stats)],
                                [m + s[1] for m, s in zip(means, stats)], color=color, alpha=0.2,
                                label=f"{att} 95% CI")
        ax.axvline(TRAIN_LEN, color="gray", linestyle=":", label="training length")
        ax.set_xscale("log", base=2)
        ax.set_xticks(lens)
        ax.set_xticklabels([str(t) for t in lens])
        ax.set_xlabel("evaluation length T (tokens)")
        ax.set_ylabel(f"loss(T) - loss({first}) (nats/token)" if relative
                      else "validation loss (nats/token)")
        ax.set_title((f"extrapolation cost: loss(T) - loss({first}) per run" if relative else
                      f"validation loss, trained at T={TRAIN_LEN} (Moby Dick, bytes)")
                     + (f"\n{n} seeds: mean, 95% t band, each seed faint" if n > 1 else ""),
                     fontsize=10)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(os.path.join(a.out, "extrapolation.png"), dpi=120)


if __name__ == "__main__":
    main()
