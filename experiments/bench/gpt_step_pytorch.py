"""The GPT of modules/gpt.cpp written with PyTorch's Python front end (eager), for
experiments/bench/gpt_step.cpp. Same architecture and shapes: RMSNorm pre-norm blocks, RoPE
(rotate-half) on q/k, causal softmax attention, GELU(tanh) MLP, tied head, AdamW.
Prints: tokens/s  ms/step  peak-RSS-MiB."""
import math
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope(x, positions, theta=10000.0):
    dim = x.shape[-1]
    inv_freq = theta ** (-torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    angles = positions.float()[:, None] * inv_freq[None, :]
    cos, sin = angles.cos(), angles.sin()
    x1, x2 = x[..., : dim // 2], x[..., dim // 2:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)


class Block(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.h = h
        self.attn_norm, self.mlp_norm = RMSNorm(d), RMSNorm(d)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d, bias=False) for _ in range(4))
        self.fc_in, self.fc_out = nn.Linear(d, 4 * d, bias=False), nn.Linear(4 * d, d, bias=False)

    def forward(self, x, positions, mask):
        b, t, c = x.shape
        y = self.attn_norm(x)
        q, k, v = (m(y).view(b, t, self.h, -1).transpose(1, 2) for m in (self.q, self.k, self.v))
        q, k = rope(q, positions), rope(k, positions)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
        att = scores.masked_fill(~mask, float("-inf")).softmax(-1)
        x = x + self.o((att @ v).transpose(1, 2).reshape(b, t, c))
        return x + self.fc_out(F.gelu(self.fc_in(self.mlp_norm(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, vocab, d, layers, h):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList(Block(d, h) for _ in range(layers))
        self.final_norm = RMSNorm(d)

    def forward(self, tokens):
        t = tokens.shape[1]
        positions = torch.arange(t)
        mask = torch.ones(t, t, dtype=torch.bool).tril()
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x, positions, mask)
        return self.final_norm(x) @ self.embed.weight.t()


def main():
    d, layers, h, t, b, steps, threads = (int(a) for a in sys.argv[1:8])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    vocab = 260
    model = GPT(vocab, d, layers, h)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    tokens = torch.randint(0, vocab, (b, t + 1))
    x, y = tokens[:, :-1], tokens[:, 1:]

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x).reshape(-1, vocab), y.reshape(-1))
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sec = (time.perf_counter() - start) / steps
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(f"{b * t / sec:.1f} {sec * 1000:.2f} {rss:.1f}")


if __name__ == "__main__":
    main()
