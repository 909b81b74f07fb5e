"""Block-size sweep report for the AR -> dLM conversion: reads ROOT/block<L>/seed<k>/*.json (the
eval.json copies experiments/ar_to_dlm/run.sh leaves) and writes OUT/results_block_sweep.md: per
block size the NELBO (nats/token) of the AR weights before diffusion training, after conversion
and from scratch, as mean ± 95% t half-width over seeds, and the paired converted - scratch
difference with its paired t-test p (scipy.stats), plus the AR model's exact NLL for reference.
Usage: block_report.py ROOT OUT --blocks "4 16 64 128" --seeds "1 2 3" [--seconds S]"""
import argparse
import datetime
import os
import sys

from scipy import stats

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import cell, load, mean_ci  # noqa: E402  (same folder)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("root")
    p.add_argument("out")
    p.add_argument("--blocks", required=True)
    p.add_argument("--seeds", required=True)
    p.add_argument("--seconds", type=int, default=None)
    a = p.parse_args()
    seeds = a.seeds.split()
    lines = [
        f"Block-size sweep of the AR -> dLM conversion, `experiments/ar_to_dlm/block_sweep.sh` "
        f"({datetime.date.today().isoformat()}): per block size L' the AR weights evaluated as a "
        "block-causal dLM, then STEPS (default 300) steps of masked-diffusion training from them (init_from) and "
        "from scratch, as in results.md (L' = 128: one block per window, the MDLM limit). The "
        "verdict is in experiments/RESULTS.md.",
        "",
        "| block size L' | AR weights as a dLM (before training) | converted (init_from AR) | "
        "from scratch | converted − scratch (95% CI) | paired p |",
        "|---:|---|---|---|---|---:|",
    ]
    ar_nll = None
    for block in a.blocks.split():
        runs = os.path.join(a.root, f"block{block}")
        values = {}
        for key in ("ar_nll", "ar_weights_as_dlm", "converted", "scratch"):
            rows = [load(runs, s, key) for s in seeds]
            if any(r is None for r in rows):
                sys.exit(f"block_report.py: {runs} lacks {key} for some of seeds {a.seeds}")
            values[key] = [r["val_loss"] for r in rows]
        ar_nll = ar_nll or values["ar_nll"]
        diffs = [c - s for c, s in zip(values["converted"], values["scratch"])]
        mean, half, sd = mean_ci(diffs)
        pvalue = (stats.ttest_rel(values["converted"], values["scratch"]).pvalue
                  if len(diffs) >= 2 and sd > 0 else float("nan"))
        lines.append(f"| {block} | {cell(values['ar_weights_as_dlm'])} | "
                     f"{cell(values['converted'])} | {cell(values['scratch'])} | "
                     f"{mean:+.4f} [{mean - half:+.4f}, {mean + half:+.4f}] | {pvalue:.3g} |")
    lines += [
        "",
        f"NELBO in nats/token on the same first 65,536 validation tokens for every row (mean ± "
        f"half-width of the 95% t interval over seeds {', '.join(seeds)}); each seed's dLMs train "
        f"with that seed from the AR run of that seed. For reference the AR models' exact NLL is "
        f"{cell(ar_nll)}. The NELBO bounds the NLL, so rows compare across block sizes.",
    ]
    if a.seconds is not None:
        lines.append(f"Sweep wall time: {a.seconds} s.")
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "results_block_sweep.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
