#!/usr/bin/env python3
"""Float64 reference for `attention=lssa|lssar`, written from docs/methods.md §3 (not from the C++).

Reads a torch.load-able dict of tensors (x, positions, optional key_padding, q_proj.weight,
k_proj.weight, v_proj.weight, out_proj.weight), computes the module output and attention weights
and writes {"y": ..., "probs": ...} with torch.save. Used by tests/modules/softplus (parity test).

usage: lssa_ref.py IN OUT --heads H --kv-heads HKV --mask causal|bidirectional|block_causal
                   [--block B] [--reweight] [--power P] [--free-rows R] [--theta THETA]
       lssa_ref.py --manifest FILE   (one argument line as above per case; one interpreter start)
"""
import argparse
import math

import torch


def rope_rotate_half(x, positions, theta):
    d = x.shape[-1]
    inv_freq = theta ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    ang = positions.to(torch.float64)[:, None] * inv_freq[None, :]
    cos, sin = ang.cos(), ang.sin()
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)


def visible(kind, block, qpos, kpos, key_padding):
    """M[i, j] = 1 if query i may see key j (True = attend), brute force."""
    m = torch.zeros(qpos.numel(), kpos.numel(), dtype=torch.bool)
    for i, qp in enumerate(qpos.tolist()):
        for j, kp in enumerate(kpos.tolist()):
            if kind == "causal":
                m[i, j] = kp <= qp
            elif kind == "bidirectional":
                m[i, j] = True
            else:
                m[i, j] = math.floor(kp / block) <= math.floor(qp / block)
    m = m[None, None]  # [1, 1, Tq, Tk]
    if key_padding is not None:
        m = m & key_padding.bool()[:, None, None, :]
    return m


def lssa_weights(q, k, m, qpos, reweight, power, free_rows):
    d = q.shape[-1]
    qh = q / q.norm(dim=-1, keepdim=True)
    kh = k / k.norm(dim=-1, keepdim=True)
    M = m.to(torch.float64)
    N = M.sum(-1, keepdim=True)                  # visible keys per row
    logN = torch.log(N.clamp(min=1))             # rows with N = 0 are fully masked anyway
    A = torch.nn.functional.softplus(math.log(d) * logN * (qh @ kh.transpose(-1, -2))) * M
    s = A.sum(-1, keepdim=True)
    A = torch.where(s > 0, A / torch.where(s > 0, s, torch.ones_like(s)), torch.zeros_like(A))
    if not reweight:
        return A
    O = (qpos >= free_rows).to(torch.float64)[:, None]   # first rows: offset 0
    R = torch.relu(A * N - O) ** power                    # float64: no overflow at test sizes
    s = R.sum(-1, keepdim=True)
    return torch.where(s > 0, R / torch.where(s > 0, s, torch.ones_like(s)), torch.zeros_like(R))


def parser():
    ap = argparse.ArgumentParser()
    ap.add_argument("inp")
    ap.add_argument("out")
    ap.add_argument("--heads", type=int, required=True)
    ap.add_argument("--kv-heads", type=int, required=True)
    ap.add_argument("--mask", default="causal")
    ap.add_argument("--block", type=int, default=0)
    ap.add_argument("--reweight", action="store_true")
    ap.add_argument("--power", type=float, default=15.0)
    ap.add_argument("--free-rows", type=int, default=3)
    ap.add_argument("--theta", type=float, default=10000.0)
    return ap


def run(a):
    t = torch.load(a.inp)
    x = t["x"].double()
    B, T, C = x.shape
    H, Hkv = a.heads, a.kv_heads
    D = C // H
    pos = t["positions"].long()
    W = {n: t[n + ".weight"].double() for n in ("q_proj", "k_proj", "v_proj", "out_proj")}
    q = (x @ W["q_proj"].T).view(B, T, H, D).transpose(1, 2)
    k = (x @ W["k_proj"].T).view(B, T, Hkv, D).transpose(1, 2)
    v = (x @ W["v_proj"].T).view(B, T, Hkv, D).transpose(1, 2)
    q, k = rope_rotate_half(q, pos, a.theta), rope_rotate_half(k, pos, a.theta)
    k = k.repeat_interleave(H // Hkv, dim=1)
    v = v.repeat_interleave(H // Hkv, dim=1)
    m = visible(a.mask, a.block, pos, pos, t.get("key_padding"))
    A = lssa_weights(q, k, m, pos, a.reweight, a.power, a.free_rows)
    y = (A @ v).transpose(1, 2).reshape(B, T, C) @ W["out_proj"].T
    torch.save({"y": y, "probs": A}, a.out)


def main():
    import sys
    if len(sys.argv) == 3 and sys.argv[1] == "--manifest":
        with open(sys.argv[2]) as f:
            for line in f:
                if line.strip():
                    run(parser().parse_args(line.split()))
    else:
        run(parser().parse_args())


if __name__ == "__main__":
    main()
