"""Markdown table of the focal-loss sweep: one row per configuration of the sweeps given on the
command line, mean +- sample std (n-1) over seeds of the test split's macro-F1, hard_ham recall,
hard_ham precision and accuracy, computed from each job's result.json (the same numbers that
`attnlab summarize` aggregates into summary.csv), plus the per-seed values of the two headline
metrics so the spread is visible.

    make_table.py SWEEP_DIR [SWEEP_DIR ...] [--seconds N]
"""
import argparse
import json
import os
import statistics

import yaml

METRICS = [("test/macro_f1", "macro-F1"), ("test/recall/hard_ham", "hard_ham recall"),
           ("test/precision/hard_ham", "hard_ham precision"), ("test/accuracy", "accuracy")]


def configuration(overrides):
    kept = [o for o in overrides if not o.startswith(("seed=", "run.", "launcher.", "trainer.",
                                                       "task="))]
    return " ".join(kept)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("sweeps", nargs="+")
    parser.add_argument("--seconds", type=int, default=0)
    args = parser.parse_args()
    rows, order = {}, []
    for sweep in args.sweeps:
        with open(os.path.join(sweep, "multirun.yaml")) as f:
            multirun = yaml.safe_load(f)
        for job in multirun["jobs"]:
            result = os.path.join(sweep, str(job["dir"]), "result.json")  # dir: relative or absolute
            if not os.path.exists(result):
                continue
            with open(result) as f:
                values = json.load(f)
            seed = next((o.split("=", 1)[1] for o in job["overrides"] if o.startswith("seed=")), "?")
            key = configuration(job["overrides"])
            if key not in rows:
                rows[key] = []
                order.append(key)
            rows[key].append((seed, values))

    def cell(values):
        if len(values) < 2:
            return "%.3f" % values[0]
        return "%.3f ± %.3f" % (statistics.mean(values), statistics.stdev(values))

    print("| loss | seeds | " + " | ".join(name for _, name in METRICS) +
          " | macro-F1 per seed | hard_ham recall per seed |")
    print("|---|---:|" + "---:|" * len(METRICS) + "---|---|")
    for key in order:
        jobs = sorted(rows[key], key=lambda j: j[0])
        cells = [cell([v[metric] for _, v in jobs]) for metric, _ in METRICS]
        per_seed = [", ".join("%.3f" % v[m] for _, v in jobs)
                    for m in ("test/macro_f1", "test/recall/hard_ham")]
        print("| %s | %d | %s | %s |" % (key, len(jobs), " | ".join(cells), " | ".join(per_seed)))
    if args.seconds:
        runs = sum(len(v) for v in rows.values())
        print("\n%d runs in %d s (%.0f s per run, one thread each, one at a time)."
              % (runs, args.seconds, args.seconds / max(runs, 1)))


if __name__ == "__main__":
    main()
