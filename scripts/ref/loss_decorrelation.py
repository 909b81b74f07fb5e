"""Decorrelation (sink) loss reference written from docs/methods.md §6 (Llama-AVSR
models/modeling_AVSRLLM.py): F.normalize + einsum, squared cosines to BOS over tokens 1..P,
/ (B*P), averaged over layers, times factor. Optional token mask divides by the counted tokens.

Each case: hidden (list of [B, T, C] tensors, one per layer), prefix_length (-1 = T-1), factor,
mask (optional [B, T] bool). Answer: loss and grads (one per layer).
"""
import torch
import torch.nn.functional as F

from loss_common import from_tensor, run, to_tensor


def case_fn(case):
    hs = [to_tensor(h).double().requires_grad_(True) for h in case["hidden"]]
    mask = to_tensor(case["mask"]) if case.get("mask") else None
    total = 0
    for h in hs:
        B, T, _ = h.shape
        P = case["prefix_length"] if case["prefix_length"] >= 0 else T - 1
        n = F.normalize(h[:, : P + 1], dim=-1)
        cos = torch.einsum("bd,bsd->bs", n[:, 0], n[:, 1:])
        if mask is None:
            total = total + (cos ** 2).sum() / (B * P)
        else:
            m = mask[:, 1 : P + 1].double()
            total = total + ((cos ** 2) * m).sum() / m.sum()
    loss = case["factor"] * total / len(hs)
    grads = torch.autograd.grad(loss, hs)
    return {"loss": from_tensor(loss), "grads": [from_tensor(g) for g in grads]}


if __name__ == "__main__":
    run(case_fn)
