"""DIFF / GDA reference (docs/methods.md §2), head by head: signal head i uses q row block
(i // G) * (G + 1) + i % G, its noise head g = i // G uses block g * (G + 1) + G (DIFF, G = 1:
unilm's [q1, q2] interleaving), kv pair p = i // (n_signal / n_kv) with k rows [k1 | k2] and v rows
[v1 | v2] (flash/vLLM semantics). o_i = (1 - λ_init) · RMSNorm_2d(A1_i V_p - λ A2_g V_p),
λ = exp(λq1·λk1) - exp(λq2·λk2) + λ_init, y = out_proj(concat o_i).

usage: diff_ref.py PROBE.pt --signal S --noise N --kv P --lambda-init L
       [--rope-style interleaved|rotate_half] [--mask causal] [--block 0]"""
import argparse
import sys

import torch
import torch.nn as nn

from probe_check import check, load, mask_matrix, rope, softmax_attention


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class DiffRef(nn.Module):
    def __init__(self, dim, d, n_signal, n_noise, n_kv, lambda_init, eps=1e-5):
        super().__init__()
        self.d, self.s, self.n, self.p, self.lambda_init = d, n_signal, n_noise, n_kv, lambda_init
        self.q_proj = nn.Linear(dim, (n_signal + n_noise) * d, bias=False)
        self.k_proj = nn.Linear(dim, 2 * n_kv * d, bias=False)
        self.v_proj = nn.Linear(dim, 2 * n_kv * d, bias=False)
        self.out_proj = nn.Linear(n_signal * 2 * d, dim, bias=False)
        for name in ("lambda_q1", "lambda_k1", "lambda_q2", "lambda_k2"):
            setattr(self, name, nn.Parameter(torch.zeros(d)))
        self.subln = RMSNorm(2 * d, eps)

    def forward(self, x, mask, rope_style, theta=10000.0):
        B, T, _ = x.shape
        d, G = self.d, self.s // self.n
        q = self.q_proj(x).view(B, T, -1, d).transpose(1, 2)       # [B, S+N, T, d]
        k = self.k_proj(x).view(B, T, -1, d).transpose(1, 2)       # [B, 2P, T, d]
        v = self.v_proj(x).view(B, T, -1, 2 * d).transpose(1, 2)   # [B, P, T, 2d]
        q, k = rope(q, theta, rope_style), rope(k, theta, rope_style)
        lam = (torch.exp(torch.sum(self.lambda_q1 * self.lambda_k1))
               - torch.exp(torch.sum(self.lambda_q2 * self.lambda_k2)) + self.lambda_init)
        outs, maps = [], []
        for i in range(self.s):
            g = i // G
            p = i // (self.s // self.p)
            q1 = q[:, g * (G + 1) + i % G]
            q2 = q[:, g * (G + 1) + G]
            a1 = softmax_attention(q1, k[:, 2 * p], mask, d ** -0.5)
            a2 = softmax_attention(q2, k[:, 2 * p + 1], mask, d ** -0.5)
            maps.append(a1 - lam * a2)
            o = a1 @ v[:, p] - lam * (a2 @ v[:, p])
            outs.append((1 - self.lambda_init) * self.subln(o))
        y = self.out_proj(torch.cat(outs, dim=-1))
        return y, {}, torch.stack(maps, dim=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("probe")
    ap.add_argument("--signal", type=int, required=True)
    ap.add_argument("--noise", type=int, required=True)
    ap.add_argument("--kv", type=int, required=True)
    ap.add_argument("--lambda-init", type=float, required=True)
    ap.add_argument("--rope-style", default="interleaved")
    ap.add_argument("--mask", default="causal")
    ap.add_argument("--block", type=int, default=0)
    ap.add_argument("--tol", type=float, default=1e-6)
    a = ap.parse_args()
    dump = load(a.probe)
    x = dump["x"]
    torch.set_default_dtype(x.dtype)
    d = dump["param.lambda_q1"].shape[0]
    m = DiffRef(x.shape[-1], d, a.signal, a.noise, a.kv, a.lambda_init)
    mask = mask_matrix(a.mask, x.shape[1], a.block)
    return check(m, dump, lambda t: m(t, mask, a.rope_style), a.tol)


if __name__ == "__main__":
    sys.exit(main())
