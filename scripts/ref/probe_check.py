"""Shared helpers for parity checks against `attnlab probe` output (a torch.load-able dict with
x, y, param.<name>, aux.<name>, grad.x, grad.param.<name>, attn): load the parameters into a
reference nn.Module, rerun forward + backward of y.sum() + sum(aux) in float64 and compare."""
import math
import sys

import torch


def rope(x, theta, style):
    """RoPE on [B, H, T, D] at positions 0..T-1: 'interleaved' pairs (2j, 2j+1) (GPT-J / unilm)
    or 'rotate_half' pairs (j, j + D/2) (GPT-NeoX / Llama / Motif)."""
    t, d = x.shape[-2], x.shape[-1]
    inv = theta ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)
    ang = torch.arange(t, dtype=torch.float64)[:, None] * inv[None, :]
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    if style == "interleaved":
        x1, x2 = x[..., 0::2], x[..., 1::2]
        return torch.stack([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).flatten(-2)
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def mask_matrix(kind, t, block):
    """[T, T] bool 'may attend' for causal | bidirectional | block_causal."""
    q = torch.arange(t)[:, None]
    k = torch.arange(t)[None, :]
    if kind == "causal":
        return k <= q
    if kind == "bidirectional":
        return torch.ones(t, t, dtype=torch.bool)
    return (k // block) <= (q // block)


def softmax_attention(q, k, mask, scale):
    s = (q @ k.transpose(-2, -1)) * scale
    return s.masked_fill(~mask, -math.inf).softmax(-1)


def check(module, dump, forward, tol=1e-6):
    """Loads param.* into `module`, runs `forward(x) -> (y, aux dict, attn or None)`, backprops
    y.sum() + sum(aux) and compares everything the dump has. Returns the process exit code."""
    params = {k[len("param."):]: v for k, v in dump.items() if k.startswith("param.")}
    own = dict(module.named_parameters())
    if set(own) != set(params):
        print("parameter names differ:", sorted(set(own) ^ set(params)))
        return 1
    module.load_state_dict(params, strict=True)
    x = dump["x"].clone().requires_grad_(True)
    y, aux, attn = forward(x)
    loss = y.sum() + sum(aux.values(), torch.zeros((), dtype=y.dtype))
    loss.backward()
    pairs = [("y", y, dump["y"]), ("grad.x", x.grad, dump["grad.x"])]
    for name, p in module.named_parameters():
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        pairs.append(("grad.param." + name, g, dump["grad.param." + name]))
    dumped_aux = sorted(k[4:] for k in dump if k.startswith("aux."))
    if dumped_aux != sorted(aux):
        print("aux losses differ:", dumped_aux, "vs", sorted(aux))
        return 1
    pairs += [("aux." + k, v, dump["aux." + k]) for k, v in aux.items()]
    if attn is not None:
        pairs.append(("attn", attn, dump["attn"]))
    worst = 0.0
    for name, ours, theirs in pairs:
        err = (ours.detach().double() - theirs.double()).abs().max().item() if ours.numel() else 0.0
        scale = max(1.0, theirs.double().abs().max().item() if theirs.numel() else 0.0)
        print(f"{name:32s} max abs err {err:.3e}")
        worst = max(worst, err / scale)
    print(f"worst relative error {worst:.3e} (tolerance {tol})")
    return 0 if worst <= tol else 1


def load(path):
    dump = torch.load(path)
    return {k: v for k, v in dump.items()}


if __name__ == "__main__":
    sys.exit("import this module")
