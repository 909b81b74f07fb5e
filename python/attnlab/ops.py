"""Typed wrappers of the ``torch.ops.attnlab`` operators (CPU, float32 and float64).

Each wrapper calls one operator; the operators run attnlab's C++ kernels (the same code the
trainer runs), differentiate through ``torch.library.register_autograd`` and trace under
``torch.compile(fullgraph=True)`` through their fake kernels. Bad arguments raise RuntimeError or
ValueError naming the argument.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch

__all__ = ["rms_norm", "gelu_tanh", "attention", "softplus_attention", "moh_attention",
           "diff_attention", "focal_loss"]

MASKS = ("causal", "bidirectional", "block_causal")


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """``x * rsqrt(mean(x**2, -1) + eps) * weight``.

    x: [..., D]; weight: [D], x's dtype. Returns [..., D] in x's dtype. Kernel:
    modules/kernels/rms_norm.h (fused AVX2 rows for float32).
    """
    return torch.ops.attnlab.rms_norm(x, weight, eps)


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """GELU with the tanh approximation (GPT-2's), elementwise; any shape.

    Kernel: modules/kernels/gelu_tanh.h (vectorised for contiguous float32).
    """
    return torch.ops.attnlab.gelu_tanh(x)


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: str = "causal",
    block_size: int = 0,
    scale: Optional[float] = None,
) -> torch.Tensor:
    """Softmax attention ``softmax(q k^T * scale + mask) v``.

    q: [B, H, T_q, D]; k: [B, H_kv, T_k, D]; v: [B, H_kv, T_k, D_v], one dtype; H a multiple of
    H_kv (grouped-query attention). Keys sit at positions 0..T_k-1 and queries at the last T_q
    positions. mask: "causal" (key j visible to query i when j <= i), "bidirectional" (all keys)
    or "block_causal" (floor(j / block_size) <= floor(i / block_size); block_size > 0).
    scale: default 1/sqrt(D). Returns [B, H, T_q, D_v]. Rows that see no key are zero.
    Kernels: modules/attention_backend.h's selection (block-sparse tiles and fused prefix rows
    for causal and block-causal masks, dense masked softmax for bidirectional).
    """
    return torch.ops.attnlab.attention(q, k, v, mask, block_size, scale)


def softplus_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: str = "causal",
    block_size: int = 0,
    reweight: bool = False,
    power: float = 15.0,
    free_rows: int = 3,
) -> torch.Tensor:
    """LSSA (``reweight=False``) or LSSAR (``reweight=True``) softplus attention, weights · v.

    Shapes, positions and masks as :func:`attention`. With l2-normalised q, k, head dim d and
    N_i the number of keys row i sees: A_ij = softplus(log d · log N_i · q_i·k_j) · M_ij, rows
    l1-normalised; LSSAR then A <- ReLU(A·N - O)^power, l1-normalised, with O = 0 on the first
    ``free_rows`` positions and 1 elsewhere (modules/attention/softplus_attention.h).
    power >= 1, free_rows >= 0. Returns [B, H, T_q, D_v].
    """
    return torch.ops.attnlab.softplus_attention(
        q, k, v, mask, block_size, reweight, power, free_rows
    )


def moh_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    active: torch.Tensor,
    shared_heads: int,
    mask: str = "causal",
    block_size: int = 0,
    scale: Optional[float] = None,
) -> torch.Tensor:
    """Mixture-of-Head attention's heads: softmax attention where routed heads skip rows.

    q: [B, H, T_q, D]; k, v: [B, H_kv, T_k, D] / [B, H_kv, T_k, D_v] as :func:`attention`.
    Heads ``0 .. shared_heads-1`` attend with every query row; each routed head
    ``shared_heads + e`` only with the rows where ``active[b, t, e]`` is true (active: bool
    [B, T_q, H - shared_heads], e.g. the top-K of a router). Inactive (row, head) pairs are zero
    in the output and get no gradient, and are not computed: the routed heads' active rows are
    gathered and attend tile by tile over their visible keys, so the cost follows the active
    fraction (modules/routed_head_attention.h). Gates are applied by the caller. Returns
    [B, H, T_q, D_v].
    """
    return torch.ops.attnlab.moh_attention(q, k, v, active, shared_heads, mask, block_size, scale)


def diff_attention(
    q_signal: torch.Tensor,
    q_noise: torch.Tensor,
    k1: torch.Tensor,
    k2: torch.Tensor,
    v: torch.Tensor,
    lambda_full: torch.Tensor,
    mask: str = "causal",
    block_size: int = 0,
    scale: Optional[float] = None,
) -> torch.Tensor:
    """Differential attention (DIFF, GDA): ``(softmax(q_s k1^T s) - lambda softmax(q_n k2^T s)) v``.

    q_signal: [B, S, T_q, D]; q_noise: [B, N, T_q, D] with N dividing S (signal head i uses noise
    head i // (S / N): DIFF has S = N, GDA groups them); k1, k2: [B, P, T_k, D]; v: [B, P, T_k,
    D_v] with P dividing N (signal head i reads kv pair i // (S / P), noise head j pair
    j // (N / P)). lambda_full: 0-dim tensor, q's dtype (differentiable: the module's
    exp(lq1·lk1) - exp(lq2·lk2) + lambda_init). Masks and positions as :func:`attention`; scale
    default 1/sqrt(D). Returns [B, S, T_q, D_v] (before the per-head RMSNorm of the module).
    """
    return torch.ops.attnlab.diff_attention(q_signal, q_noise, k1, k2, v, lambda_full, mask,
                                            block_size, scale)


def focal_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    mode: str = "softmax",
    gamma: float = 2.0,
    alpha: Union[None, float, Sequence[float], torch.Tensor] = None,
    ignore_index: int = -100,
    label_smoothing: float = 0.0,
    smoothing_mode: str = "pt",
    reduction: str = "mean",
) -> torch.Tensor:
    """Focal loss (losses/focal.h), differentiable in ``logits``.

    softmax mode: logits [..., C], targets [...] int64 class indices. sigmoid mode: targets
    either logits' shape (0/1 or soft) or int64 class indices [...] (one-hot over C).
    alpha: None, a number or one per class ([C]); in sigmoid mode a negative number disables it.
    smoothing_mode: "pt" or "soft"; reduction: "none" (softmax [...], sigmoid logits' shape),
    "sum", "mean" or "weighted_mean" (scalars). Targets equal to ignore_index contribute nothing.
    """
    if alpha is not None and not isinstance(alpha, torch.Tensor):
        alpha = torch.tensor(alpha, dtype=logits.dtype, device=logits.device)
    return torch.ops.attnlab.focal_loss(
        logits, targets, mode, gamma, alpha, ignore_index, label_smoothing, smoothing_mode,
        reduction,
    )
