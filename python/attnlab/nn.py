"""``nn.Module`` layers on the attnlab operators, named like attnlab's checkpoints.

Parameter names follow the C++ modules (``weight`` of RMSNorm; ``q_proj``, ``k_proj``,
``v_proj``, ``out_proj`` of modules/attention/mha.h and softplus_attention.h) so state dicts map
one to one; keyword arguments are the YAML keys (configs/attention/*.yaml: ``rope``, ``bias``,
``power``, ``free_rows``; configs/model/: ``d_model``, ``n_heads``, ``n_kv_heads``, ``mask``,
``block_size``, ``rope_theta``, ``norm_eps``). Dropout and RoPE scaling are not offered here.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from . import ops

__all__ = ["RMSNorm", "Attention", "SoftplusAttention", "apply_rope"]


class RMSNorm(nn.Module):
    """RMSNorm over the last dim (the GPT's norm): ``attnlab.ops.rms_norm``."""

    def __init__(self, dim: int, norm_eps: float = 1e-5) -> None:
        super().__init__()
        self.norm_eps = norm_eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ops.rms_norm(x, self.weight, self.norm_eps)


def apply_rope(x: torch.Tensor, positions: torch.Tensor, theta: float = 10000.0) -> torch.Tensor:
    """Rotary positions, GPT-NeoX "rotate half" pairing (modules/rope.h, rope_scaling none).

    x: [B, H, T, D] (D even), positions: [T]. Angles in float64, rotation in float32 (float64 for
    float64 inputs), result in x's dtype.
    """
    dim = x.shape[-1]
    inv_freq = theta ** (-torch.arange(0, dim, 2, dtype=torch.float64, device=x.device) / dim)
    angles = positions.to(torch.float64)[:, None] * inv_freq[None, :]
    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    cos, sin = angles.cos().to(compute), angles.sin().to(compute)
    xf = x.to(compute)
    x1, x2 = xf[..., : dim // 2], xf[..., dim // 2 :]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).to(x.dtype)


class _ProjectedAttention(nn.Module):
    """q/k/v/out projections and head split shared by the attention layers."""

    def __init__(self, d_model: int, n_heads: int, n_kv_heads: Optional[int], rope: bool,
                 bias: bool, mask: str, block_size: int, rope_theta: float) -> None:
        super().__init__()
        n_kv_heads = n_kv_heads or n_heads
        if d_model % n_heads != 0:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        if n_heads % n_kv_heads != 0:
            raise ValueError(f"n_heads ({n_heads}) must be a multiple of n_kv_heads ({n_kv_heads})")
        if mask not in ops.MASKS:
            raise ValueError(f"mask must be one of {', '.join(ops.MASKS)}, got {mask!r}")
        self.n_heads, self.n_kv_heads = n_heads, n_kv_heads
        self.head_dim = d_model // n_heads
        self.rope, self.rope_theta = rope, rope_theta
        self.mask, self.block_size = mask, block_size
        self.q_proj = nn.Linear(d_model, n_heads * self.head_dim, bias=bias)
        self.k_proj = nn.Linear(d_model, n_kv_heads * self.head_dim, bias=bias)
        self.v_proj = nn.Linear(d_model, n_kv_heads * self.head_dim, bias=bias)
        self.out_proj = nn.Linear(n_heads * self.head_dim, d_model, bias=bias)

    def _heads(self, x: torch.Tensor):
        batch, length, _ = x.shape

        def split(t: torch.Tensor, n: int) -> torch.Tensor:
            return t.view(batch, length, n, self.head_dim).transpose(1, 2)

        q = split(self.q_proj(x), self.n_heads)
        k = split(self.k_proj(x), self.n_kv_heads)
        v = split(self.v_proj(x), self.n_kv_heads)
        if self.rope:
            positions = torch.arange(length, device=x.device)
            q = apply_rope(q, positions, self.rope_theta)
            k = apply_rope(k, positions, self.rope_theta)
        return q, k, v

    def _merge(self, y: torch.Tensor) -> torch.Tensor:
        batch, _, length, _ = y.shape
        return self.out_proj(y.transpose(1, 2).reshape(batch, length, -1))


class Attention(_ProjectedAttention):
    """Multi-head softmax attention (``attention=mha``) on ``attnlab.ops.attention``.

    x: [B, T, d_model] -> [B, T, d_model]; scale 1/sqrt(head dim).
    """

    def __init__(self, d_model: int, n_heads: int, n_kv_heads: Optional[int] = None, *,
                 rope: bool = True, bias: bool = False, mask: str = "causal",
                 block_size: int = 0, rope_theta: float = 10000.0) -> None:
        super().__init__(d_model, n_heads, n_kv_heads, rope, bias, mask, block_size, rope_theta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._heads(x)
        y = ops.attention(q, k, v, self.mask, self.block_size, 1.0 / math.sqrt(self.head_dim))
        return self._merge(y)


class SoftplusAttention(_ProjectedAttention):
    """LSSA / LSSAR softplus attention (``attention=lssa`` / ``lssar``).

    name: "lssa" or "lssar" (re-weighting with ``power`` and ``free_rows``).
    x: [B, T, d_model] -> [B, T, d_model].
    """

    def __init__(self, d_model: int, n_heads: int, n_kv_heads: Optional[int] = None, *,
                 name: str = "lssa", rope: bool = True, bias: bool = False, power: float = 15.0,
                 free_rows: int = 3, mask: str = "causal", block_size: int = 0,
                 rope_theta: float = 10000.0) -> None:
        if name not in ("lssa", "lssar"):
            raise ValueError(f"name must be lssa or lssar, got {name!r}")
        super().__init__(d_model, n_heads, n_kv_heads, rope, bias, mask, block_size, rope_theta)
        self.name, self.power, self.free_rows = name, power, free_rows

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._heads(x)
        y = ops.softplus_attention(q, k, v, self.mask, self.block_size, self.name == "lssar",
                                   self.power, self.free_rows)
        return self._merge(y)
