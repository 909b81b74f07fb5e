"""A-STAR segregation/retention reference written from docs/methods.md §7, with plain loops.

overlap(a, b) = sum min(a, b) / sum(a + b)  (Eq. 2's per-pair term)
retention(A, Bin) = 1 - sum min(A, Bin) / sum(A + Bin)  (Eq. 3), Bin = minmax(ref) >= threshold.

Each case: probs ([B, H, T, T] per layer), groups (heads | tokens), heads (null = all),
concept_positions, pair_reduction (mean | sum), retention_weight, retention_threshold.
The retention reference is the current detached map. Answer: loss and grads.
"""
import itertools

import torch

from loss_common import from_tensor, run, to_tensor


def overlap(a, b):
    den = (a + b).sum()
    return torch.minimum(a, b).sum() / den if den > 0 else a.sum() * 0


def binarize(m, thr):
    lo, hi = m.min(), m.max()
    norm = (m - lo) / (hi - lo) if hi > lo else torch.zeros_like(m)
    return (norm >= thr).double()


def retention(a, bin_):
    return 1 - torch.minimum(a, bin_).sum() / (a + bin_).sum()


def reduce(values, how):
    s = sum(values)
    return s if how == "sum" else s / len(values)


def case_fn(case):
    probs = [to_tensor(p).double().requires_grad_(True) for p in case["probs"]]
    how = case["pair_reduction"]
    rw, thr = case["retention_weight"], case["retention_threshold"]
    total = 0
    for p in probs:
        B, H, T, _ = p.shape
        heads = case["heads"] if case["heads"] is not None else list(range(H))
        layer = 0
        if case["groups"] == "heads":
            rows = []
            for b in range(B):
                for q in range(T):
                    maps = [p[b, h, q] for h in heads]
                    v = reduce([overlap(maps[i], maps[j])
                                for i, j in itertools.combinations(range(len(maps)), 2)], how)
                    if rw > 0:
                        v = v + rw * reduce([retention(m, binarize(m.detach(), thr))
                                             for m in maps], how)
                    rows.append(v)
            layer = sum(rows) / len(rows)
        else:
            per_b = []
            for b in range(B):
                avg = sum(p[b, h] for h in heads) / len(heads)  # [T_q, T_k]
                maps = [avg[:, k] for k in case["concept_positions"]]
                v = reduce([overlap(maps[i], maps[j])
                            for i, j in itertools.combinations(range(len(maps)), 2)], how)
                if rw > 0:
                    v = v + rw * reduce([retention(m, binarize(m.detach(), thr))
                                         for m in maps], how)
                per_b.append(v)
            layer = sum(per_b) / B
        total = total + layer
    loss = total / len(probs)
    grads = torch.autograd.grad(loss, probs)
    return {"loss": from_tensor(loss), "grads": [from_tensor(g) for g in grads]}


if __name__ == "__main__":
    run(case_fn)
