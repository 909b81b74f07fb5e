"""MoH reference (docs/methods.md §1), written after the official MoH-DiT MoHAttention (router names
wg = W_r, wg_0 = W_h, wg_1 = W_s; qkv rows [q|k|v] head-major; gates on head outputs before proj)
plus what attnlab adds for language models: RoPE (rotate-half) on q/k and a mask kind. The qnorm
router follows MoH-LLaMA3's inference code (query norms before RoPE / unbiased std, softmax,
top-K, 0/1 gates), with a straight-through estimator in training.

usage: moh_ref.py PROBE.pt --heads H --shared HS --routed-k K [--router learned|qnorm]
       [--mask causal] [--block 0] [--training] [--no-rope] [--qkv-bias] [--no-proj-bias]"""
import argparse
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from probe_check import check, load, mask_matrix, rope, softmax_attention


class MoHRef(nn.Module):
    def __init__(self, dim, heads, shared, routed_k, router, qkv_bias, proj_bias):
        super().__init__()
        self.h, self.hs, self.k, self.router = heads, shared, routed_k, router
        self.d = dim // heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim, bias=proj_bias)
        if router == "learned":
            if routed_k > 0:
                self.wg = nn.Linear(dim, heads - shared, bias=False)
                if shared > 0:
                    self.wg_0 = nn.Linear(dim, 2, bias=False)
            if shared > 1:
                self.wg_1 = nn.Linear(dim, shared, bias=False)

    def forward(self, x, mask, use_rope, theta=10000.0, beta=0.01):
        B, N, C = x.shape
        h, hs, K, d = self.h, self.hs, self.k, self.d
        _x = x.reshape(B * N, C)
        qkv = self.qkv(x).reshape(B, N, 3, h, d).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        aux = {}
        if K > 0:
            if self.router == "learned":
                gates = F.softmax(self.wg(_x), dim=1)
            else:
                g = self.qkv(x)[..., :C].reshape(B * N, h, d)
                logits = torch.stack([g[:, i].norm(p=2, dim=1) for i in range(hs, h)], dim=1)
                gates = F.softmax(logits / logits.std(dim=1, keepdim=True), dim=1)
            E = gates.shape[1]
            _, idx = torch.topk(gates, k=K, dim=1)
            sel = F.one_hot(idx, num_classes=E).sum(dim=1)
            if self.router == "learned":
                if self.training:
                    aux["moh_balance"] = beta * torch.mean(gates.mean(0) * sel.to(x.dtype).mean(0)) * E * E
                r = gates * sel
                r = r / torch.clamp(r.sum(1, keepdim=True), min=torch.finfo(r.dtype).eps)
                routed = r.reshape(B, N, -1) * K
            else:
                m = sel.to(x.dtype)
                routed = (m + (gates - gates.detach()) if self.training else m).reshape(B, N, -1)
        if use_rope:
            q, k = rope(q, theta, "rotate_half"), rope(k, theta, "rotate_half")
        attn = softmax_attention(q, k, mask, d ** -0.5)
        out = (attn @ v).transpose(1, 2)  # [B, N, h, d]
        if hs > 1 and self.router == "learned":
            shared = F.softmax(self.wg_1(_x), dim=1).reshape(B, N, -1) * hs
        else:
            shared = torch.ones(B, N, hs, dtype=x.dtype)
        if K == 0:
            gate = shared
        elif hs == 0:
            gate = routed
        elif self.router == "learned":
            w0 = F.softmax(self.wg_0(_x), dim=1).reshape(B, N, 2) * 2
            gate = torch.cat([w0[:, :, 0:1] * shared, w0[:, :, 1:2] * routed], dim=2)
        else:
            gate = torch.cat([shared, routed], dim=2)
        out = torch.einsum("bne,bned->bned", gate, out).reshape(B, N, h * d)
        return self.proj(out), aux, attn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("probe")
    ap.add_argument("--heads", type=int, required=True)
    ap.add_argument("--shared", type=int, required=True)
    ap.add_argument("--routed-k", type=int, required=True)
    ap.add_argument("--router", default="learned")
    ap.add_argument("--mask", default="causal")
    ap.add_argument("--block", type=int, default=0)
    ap.add_argument("--training", action="store_true")
    ap.add_argument("--no-rope", action="store_true")
    ap.add_argument("--qkv-bias", action="store_true")
    ap.add_argument("--no-proj-bias", action="store_true")
    ap.add_argument("--beta", type=float, default=0.01)
    ap.add_argument("--tol", type=float, default=1e-6)
    a = ap.parse_args()
    dump = load(a.probe)
    x = dump["x"]
    torch.set_default_dtype(x.dtype)
    m = MoHRef(x.shape[-1], a.heads, a.shared, a.routed_k, a.router, a.qkv_bias, not a.no_proj_bias)
    m.train(a.training)
    mask = mask_matrix(a.mask, x.shape[1], a.block)
    return check(m, dump, lambda t: m(t, mask, not a.no_rope, beta=a.beta), a.tol)


if __name__ == "__main__":
    sys.exit(main())
