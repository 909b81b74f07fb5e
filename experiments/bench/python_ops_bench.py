"""Forward + backward time of the `import attnlab` attention operators against the same maths
written in eager PyTorch and compiled with torch.compile (default inductor backend), on the CPU.

What it measures: for each operator (softmax attention with a causal mask, LSSA softplus
attention, MoH's shared + routed heads, DIFF's differential attention) and each shape (batch 8,
4 heads, T in {512, 1024}, head dim in {32, 64}, float32), one call plus the backward of
`y.square().mean()`, with gradients to every input. The three implementations of an operator
run one after the other in every round (torch.compile compiles during the correctness check
below; warm-up rounds are not timed), and the median over rounds is reported, with the ratios
eager / attnlab and compiled / attnlab (above 1: attnlab is faster). Before timing, each
implementation's output and input gradients are checked against the attnlab operator's
(float32, rtol 1e-3 / atol 1e-4), so every number is of a correct computation.

The eager references are the formulas of tests/python/references.py: the masked-softmax
attention materialises the [T, T] scores, the MoH reference computes every head on every row and
zeroes the inactive routed rows (the attnlab operator only computes the active ones; routed_k of
the routed heads are active per row), DIFF computes both softmax maps. torch.compile fuses the
same graph. attnlab runs its own kernels (block-skipping / fused prefix rows for causal masks).

  .venv/bin/python experiments/bench/python_ops_bench.py [--threads 2] [--rounds 5]
      [--warmup 1] [--lengths 512 1024] [--head-dims 32 64] [--ops attention lssa moh diff]
      [--out results.md]

PYTHONPATH must reach python/ (scripts/setup.sh does that) and the operator library must be
built (`cmake --build build --target attnlab_torch_ops`, or ATTNLAB_OPS_LIBRARY).
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

import attnlab

BATCH, HEADS = 8, 4


def _causal(t):
    return torch.ones(t, t, dtype=torch.bool).tril()


def eager_attention(q, k, v):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(~_causal(q.shape[2]), float("-inf"))
    return torch.softmax(scores, -1) @ v


def eager_lssa(q, k, v):
    t, d = q.shape[2], q.shape[-1]
    m = _causal(t).to(q.dtype)
    n = m.sum(-1, keepdim=True)
    qh, kh = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
    a = F.softplus(math.log(d) * n.log() * (qh @ kh.transpose(-2, -1))) * m
    return (a / a.sum(-1, keepdim=True)) @ v


def make_eager_moh(active, shared):
    rows = torch.cat([torch.ones(*active.shape[:2], shared, dtype=torch.bool), active], -1)
    rows = rows.transpose(1, 2)[..., None].to(torch.float32)

    def fn(q, k, v):
        return eager_attention(q, k, v) * rows

    return fn


def make_eager_diff(lam):
    def fn(q_signal, q_noise, k1, k2, v):
        a1 = torch.softmax((q_signal @ k1.transpose(-2, -1) / math.sqrt(q_signal.shape[-1]))
                           .masked_fill(~_causal(q_signal.shape[2]), float("-inf")), -1)
        a2 = torch.softmax((q_noise @ k2.transpose(-2, -1) / math.sqrt(q_noise.shape[-1]))
                           .masked_fill(~_causal(q_noise.shape[2]), float("-inf")), -1)
        return (a1 - lam * a2) @ v

    return fn


def problem(op, t, d):
    """(inputs, attnlab fn, eager fn) for one operator and shape; inputs require grad."""
    g = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, generator=g).requires_grad_(True)

    if op == "attention":
        inputs = [rand(BATCH, HEADS, t, d) for _ in range(3)]
        return inputs, lambda q, k, v: attnlab.ops.attention(q, k, v, "causal"), eager_attention
    if op == "lssa":
        inputs = [rand(BATCH, HEADS, t, d) for _ in range(3)]
        return (inputs, lambda q, k, v: attnlab.ops.softplus_attention(q, k, v, "causal"),
                eager_lssa)
    if op == "moh":
        shared, routed_k = 1, 1  # 1 shared + 1 of 3 routed heads per row: half the head-rows
        scores = torch.rand(BATCH, t, HEADS - shared, generator=g)
        idx = scores.topk(routed_k, -1).indices
        active = torch.zeros_like(scores).scatter(-1, idx, 1.0).to(torch.bool)
        inputs = [rand(BATCH, HEADS, t, d) for _ in range(3)]
        return (inputs,
                lambda q, k, v: attnlab.ops.moh_attention(q, k, v, active, shared, "causal"),
                make_eager_moh(active, shared))
    if op == "diff":
        lam = torch.tensor(0.3)
        # DIFF with 4 query heads of dim d: 2 differential heads, values of dim 2d.
        inputs = [rand(BATCH, HEADS // 2, t, d) for _ in range(4)] + [
            rand(BATCH, HEADS // 2, t, 2 * d)]
        return (inputs,
                lambda qs, qn, k1, k2, v: attnlab.ops.diff_attention(qs, qn, k1, k2, v, lam,
                                                                     "causal"),
                make_eager_diff(lam))
    raise ValueError(op)


def step(fn, inputs):
    """Seconds for one forward + backward of y.square().mean()."""
    for x in inputs:
        x.grad = None
    start = time.perf_counter()
    fn(*inputs).square().mean().backward()
    return time.perf_counter() - start


def check(fns, inputs):
    ref_out = fns["attnlab"](*inputs)
    ref_grads = torch.autograd.grad(ref_out.square().mean(), inputs)
    for name, fn in fns.items():
        out = fn(*inputs)
        grads = torch.autograd.grad(out.square().mean(), inputs)
        torch.testing.assert_close(out, ref_out, rtol=1e-3, atol=1e-4, msg=f"{name} output")
        for g, r in zip(grads, ref_grads):
            torch.testing.assert_close(g, r, rtol=1e-3, atol=1e-4, msg=f"{name} gradient")


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = os.getloadavg()
    return f"{cpu}, {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--lengths", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--head-dims", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--ops", nargs="+", default=["attention", "lssa", "moh", "diff"])
    parser.add_argument("--out", help="also write the Markdown table to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    header = (f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; {machine()}; "
              f"torch {torch.__version__}, {torch.get_num_threads()} threads; batch {BATCH}, "
              f"{HEADS} heads, float32, causal; median of {args.rounds} rounds after "
              f"{args.warmup} warm-up rounds")
    print(header, flush=True)
    rows = ["| operator | T | head dim | attnlab ms | eager ms | compiled ms | eager / attnlab "
            "| compiled / attnlab |", "|---|---|---|---|---|---|---|---|"]
    for op in args.ops:
        for t in args.lengths:
            for d in args.head_dims:
                torch._dynamo.reset()
                inputs, ours, eager = problem(op, t, d)
                fns = {"attnlab": ours, "eager": eager,
                       "compiled": torch.compile(eager, dynamic=False)}
                check(fns, inputs)
                times = {name: [] for name in fns}
                for r in range(args.warmup + args.rounds):
                    for name, fn in fns.items():
                        seconds = step(fn, inputs)
                        if r >= args.warmup:
                            times[name].append(seconds)
                med = {name: statistics.median(v) * 1e3 for name, v in times.items()}
                row = (f"| {op} | {t} | {d} | {med['attnlab']:.1f} | {med['eager']:.1f} | "
                       f"{med['compiled']:.1f} | {med['eager'] / med['attnlab']:.2f} | "
                       f"{med['compiled'] / med['attnlab']:.2f} |")
                rows.append(row)
                print(row, flush=True)
    footer = f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    print(footer)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(header + "\n\n" + "\n".join(rows) + "\n\n" + footer + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
