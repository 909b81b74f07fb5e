"""The GPT of modules/gpt.cpp written with PyTorch's Python front end, the baseline of
experiments/bench/gpt_step.cpp. Same architecture and shapes: RMSNorm pre-norm blocks, RoPE
(rotate-half) on q/k, causal attention through F.scaled_dot_product_attention, GELU(tanh) MLP,
tied head, AdamW with gradients set to None.

    gpt_step_pytorch.py MODE d layers heads T batch steps threads

MODE is `eager` or `compiled` (torch.compile of the model, default inductor backend; the
compilation happens in the warm-up steps and is not timed). The process stays alive: for every
line `run` on stdin it times `steps` training steps and prints `tokens/s ms/step peak-RSS-MiB`,
so the C++ benchmark can alternate rounds with it. A line `quit` (or end of input) ends it."""
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


def rope(x, cos, sin):
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)


class Block(nn.Module):
    def __init__(self, d, h):
        super().__init__()
        self.h = h
        self.attn_norm, self.mlp_norm = RMSNorm(d), RMSNorm(d)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d, bias=False) for _ in range(4))
        self.fc_in, self.fc_out = nn.Linear(d, 4 * d, bias=False), nn.Linear(4 * d, d, bias=False)

    def forward(self, x, cos, sin):
        b, t, c = x.shape
        y = self.attn_norm(x)
        q, k, v = (m(y).view(b, t, self.h, -1).transpose(1, 2) for m in (self.q, self.k, self.v))
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.o(att.transpose(1, 2).reshape(b, t, c))
        return x + self.fc_out(F.gelu(self.fc_in(self.mlp_norm(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, vocab, d, layers, h, t, theta=10000.0):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.blocks = nn.ModuleList(Block(d, h) for _ in range(layers))
        self.final_norm = RMSNorm(d)
        dim = d // h
        inv_freq = theta ** (-torch.arange(0, dim, 2, dtype=torch.float32) / dim)
        angles = torch.arange(t).float()[:, None] * inv_freq[None, :]
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, tokens):
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x, self.cos, self.sin)
        return self.final_norm(x) @ self.embed.weight.t()


def main():
    mode = sys.argv[1]
    d, layers, h, t, b, steps, threads = (int(a) for a in sys.argv[2:9])
    if mode not in ("eager", "compiled"):
        sys.exit(f"mode must be eager or compiled, got {mode!r}")
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    vocab = 260
    model = GPT(vocab, d, layers, h, t)
    forward = torch.compile(model) if mode == "compiled" else model
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    tokens = torch.randint(0, vocab, (b, t + 1))
    x, y = tokens[:, :-1], tokens[:, 1:]

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(forward(x).reshape(-1, vocab), y.reshape(-1))
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        start = time.perf_counter()
        for _ in range(steps):
            step()
        sec = (time.perf_counter() - start) / steps
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
        print(f"{b * t / sec:.1f} {sec * 1000:.2f} {rss:.1f}", flush=True)


if __name__ == "__main__":
    main()
