"""``nn.Module`` layers on the attnlab operators, named like attnlab's checkpoints.

Parameter names follow the C++ modules (``weight`` of RMSNorm; ``q_proj``, ``k_proj``,
``v_proj``, ``out_proj`` of modules/attention/mha.h and softplus_attention.h) so state dicts map
one to one; keyword arguments are the YAML keys (configs/attention/*.yaml: ``rope``, ``bias``,
``power``, ``free_rows``; configs/model/: ``d_model``, ``n_heads``, ``n_kv_heads``, ``mask``,
``block_size``, ``rope_theta``, ``norm_eps``). Dropout and RoPE scaling are not offered here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from . import ops

__all__ = ["RMSNorm", "Attention", "SoftplusAttention", "MoHAttention", "DiffAttention",
           "HeadRMSNorm", "RopeScaling", "apply_rope", "rope_inverse_frequencies",
           "diff_lambda_init", "gda_heads"]


class RMSNorm(nn.Module):
    """RMSNorm over the last dim (the GPT's norm): ``attnlab.ops.rms_norm``."""

    def __init__(self, dim: int, norm_eps: float = 1e-5) -> None:
        super().__init__()
        self.norm_eps = norm_eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ops.rms_norm(x, self.weight, self.norm_eps)


@dataclass(frozen=True)
class RopeScaling:
    """``model.rope_scaling`` and its factors: none, linear (positions / factor) or llama3."""

    type: str = "none"
    factor: float = 1.0
    low_freq_factor: float = 1.0
    high_freq_factor: float = 4.0
    original_max_positions: float = 8192.0

    def __post_init__(self) -> None:
        if self.type not in ("none", "linear", "llama3"):
            raise ValueError(f"rope_scaling must be none, linear or llama3, got {self.type!r}")
        if not (math.isfinite(self.factor) and self.factor > 0):
            raise ValueError(f"rope_factor must be a positive number, got {self.factor}")


def rope_inverse_frequencies(dim: int, theta: float = 10000.0,
                             scaling: Optional[RopeScaling] = None,
                             device: Optional[torch.device] = None) -> torch.Tensor:
    """The [dim / 2] float64 RoPE frequencies theta^(-2i/dim), rescaled as modules/rope.cpp does."""
    inv_freq = theta ** (-torch.arange(0, dim, 2, dtype=torch.float64, device=device) / dim)
    if scaling is None or scaling.type == "none":
        return inv_freq
    if scaling.type == "linear":
        return inv_freq / scaling.factor
    low_wavelen = scaling.original_max_positions / scaling.low_freq_factor
    high_wavelen = scaling.original_max_positions / scaling.high_freq_factor
    wavelen = 2.0 * math.pi / inv_freq
    scaled = torch.where(wavelen > low_wavelen, inv_freq / scaling.factor, inv_freq)
    smooth = (scaling.original_max_positions / wavelen - scaling.low_freq_factor) / (
        scaling.high_freq_factor - scaling.low_freq_factor)
    smoothed = (1.0 - smooth) * scaled / scaling.factor + smooth * scaled
    medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen)
    return torch.where(medium, smoothed, scaled)


def apply_rope(x: torch.Tensor, positions: torch.Tensor, theta: float = 10000.0, *,
               style: str = "rotate_half", scaling: Optional[RopeScaling] = None) -> torch.Tensor:
    """Rotary positions (modules/rope.h).

    x: [B, H, T, D] (D even), positions: [T]. style: "rotate_half" (GPT-NeoX pairing, dim i with
    i + D/2) or "interleaved" (GPT-J pairing, dims 2i and 2i + 1). scaling: ``model.rope_scaling``
    (default none). Angles in float64, rotation in float32 (float64 for float64 inputs), result
    in x's dtype.
    """
    if style not in ("rotate_half", "interleaved"):
        raise ValueError(f"style must be rotate_half or interleaved, got {style!r}")
    dim = x.shape[-1]
    inv_freq = rope_inverse_frequencies(dim, theta, scaling, x.device)
    angles = positions.to(torch.float64)[:, None] * inv_freq[None, :]
    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    cos, sin = angles.cos().to(compute), angles.sin().to(compute)
    xf = x.to(compute)
    if style == "rotate_half":
        x1, x2 = xf[..., : dim // 2], xf[..., dim // 2 :]
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).to(x.dtype)
    pairs = xf.unflatten(-1, (dim // 2, 2))
    x1, x2 = pairs[..., 0], pairs[..., 1]
    return torch.stack([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1).flatten(-2).to(x.dtype)


class _ProjectedAttention(nn.Module):
    """q/k/v/out projections and head split shared by the attention layers."""

    def __init__(self, d_model: int, n_heads: int, n_kv_heads: Optional[int], rope: bool,
                 bias: bool, mask: str, block_size: int, rope_theta: float,
                 qkv_bias: Optional[bool] = None,
                 rope_scaling: Optional[RopeScaling] = None) -> None:
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
        self.rope, self.rope_theta, self.rope_scaling = rope, rope_theta, rope_scaling
        self.mask, self.block_size = mask, block_size
        qkv_bias = bias if qkv_bias is None else qkv_bias
        self.q_proj = nn.Linear(d_model, n_heads * self.head_dim, bias=qkv_bias)
        self.k_proj = nn.Linear(d_model, n_kv_heads * self.head_dim, bias=qkv_bias)
        self.v_proj = nn.Linear(d_model, n_kv_heads * self.head_dim, bias=qkv_bias)
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
            q = apply_rope(q, positions, self.rope_theta, scaling=self.rope_scaling)
            k = apply_rope(k, positions, self.rope_theta, scaling=self.rope_scaling)
        return q, k, v

    def _merge(self, y: torch.Tensor) -> torch.Tensor:
        batch, _, length, _ = y.shape
        return self.out_proj(y.transpose(1, 2).reshape(batch, length, -1))


class Attention(_ProjectedAttention):
    """Multi-head softmax attention (``attention=mha``) on ``attnlab.ops.attention``.

    x: [B, T, d_model] -> [B, T, d_model]; scale 1/sqrt(head dim).
    """

    def __init__(self, d_model: int, n_heads: int, n_kv_heads: Optional[int] = None, *,
                 rope: bool = True, bias: bool = False, qkv_bias: Optional[bool] = None,
                 mask: str = "causal", block_size: int = 0, rope_theta: float = 10000.0,
                 rope_scaling: Optional[RopeScaling] = None) -> None:
        super().__init__(d_model, n_heads, n_kv_heads, rope, bias, mask, block_size, rope_theta,
                         qkv_bias, rope_scaling)

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
                 rope_theta: float = 10000.0, rope_scaling: Optional[RopeScaling] = None) -> None:
        if name not in ("lssa", "lssar"):
            raise ValueError(f"name must be lssa or lssar, got {name!r}")
        super().__init__(d_model, n_heads, n_kv_heads, rope, bias, mask, block_size, rope_theta,
                         None, rope_scaling)
        self.name, self.power, self.free_rows = name, power, free_rows

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._heads(x)
        y = ops.softplus_attention(q, k, v, self.mask, self.block_size, self.name == "lssar",
                                   self.power, self.free_rows)
        return self._merge(y)


def _check_mask(mask: str) -> None:
    if mask not in ops.MASKS:
        raise ValueError(f"mask must be one of {', '.join(ops.MASKS)}, got {mask!r}")


class MoHAttention(nn.Module):
    """Mixture-of-Head attention (``attention=moh``; modules/attention/moh.h).

    Heads ``0 .. shared_heads-1`` are shared (always on, weighted by the softmax router ``wg_1``),
    the others routed: each token activates the top ``routed_k`` of them by the router ``wg``
    (gates renormalised over the chosen and scaled by K); the 2-way router ``wg_0`` mixes the
    two groups. ``router="qnorm"`` is MoH-LLaMA3's parameter-free router (query norms over their
    std, 0/1 gates, straight-through in training). Routed heads are computed only for the
    tokens that activate them (``attnlab.ops.moh_attention``), unless ``sparse_compute=False``.

    Parameter names are the official MoH code's and attnlab checkpoints': ``qkv`` (rows [q|k|v],
    head-major), ``proj``, ``wg``, ``wg_0``, ``wg_1`` (the routers that the head split needs).
    x: [B, T, d_model] -> [B, T, d_model]. In training with the learned router,
    ``balance_loss`` holds ``balance_coef · l_aux`` of the last forward (None otherwise).
    """

    def __init__(self, d_model: int, n_heads: int, *, shared_heads: Optional[int] = None,
                 routed_k: Optional[int] = None, router: str = "learned",
                 router_init: str = "xavier_uniform", balance_coef: float = 0.01,
                 qkv_bias: bool = False, proj_bias: bool = True, rope: bool = True,
                 sparse_compute: bool = True, mask: str = "causal", block_size: int = 0,
                 rope_theta: float = 10000.0,
                 rope_scaling: Optional[RopeScaling] = None) -> None:
        super().__init__()
        if n_heads <= 0 or d_model % n_heads != 0:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        _check_mask(mask)
        shared_heads = n_heads // 2 if shared_heads is None else shared_heads
        routed_k = n_heads // 4 if routed_k is None else routed_k
        routed = n_heads - shared_heads
        if not 0 <= shared_heads <= n_heads:
            raise ValueError(f"shared_heads must be in [0, n_heads={n_heads}], got {shared_heads}")
        if not 0 <= routed_k <= routed:
            raise ValueError(f"routed_k must be in [0, n_heads - shared_heads = {routed}], got "
                             f"{routed_k}")
        if shared_heads == 0 and routed_k == 0:
            raise ValueError("shared_heads and routed_k are both 0: no head would be active")
        if router not in ("learned", "qnorm"):
            raise ValueError(f"router must be learned or qnorm, got {router!r}")
        if router_init not in ("xavier_uniform", "trunc_normal"):
            raise ValueError(f"router_init must be xavier_uniform or trunc_normal, got "
                             f"{router_init!r}")
        if router == "qnorm" and routed_k > 0 and routed < 2:
            raise ValueError("router='qnorm' needs at least 2 routed heads")
        self.n_heads, self.head_dim = n_heads, d_model // n_heads
        self.shared_heads, self.routed_k, self.router = shared_heads, routed_k, router
        self.balance_coef, self.sparse_compute = balance_coef, sparse_compute
        self.rope, self.rope_theta, self.rope_scaling = rope, rope_theta, rope_scaling
        self.mask, self.block_size = mask, block_size
        self.balance_loss: Optional[torch.Tensor] = None
        inner = n_heads * self.head_dim
        self.qkv = nn.Linear(d_model, 3 * inner, bias=qkv_bias)
        self.proj = nn.Linear(inner, d_model, bias=proj_bias)
        self.wg = self.wg_0 = self.wg_1 = None
        if router == "learned":
            def make(out: int) -> nn.Linear:
                linear = nn.Linear(d_model, out, bias=False)
                with torch.no_grad():
                    if router_init == "xavier_uniform":
                        nn.init.xavier_uniform_(linear.weight)
                    else:
                        linear.weight.normal_(0.0, 0.02).clamp_(-2.0, 2.0)
                return linear

            if routed_k > 0:
                self.wg = make(routed)
                if shared_heads > 0:
                    self.wg_0 = make(2)
            if shared_heads > 1:
                self.wg_1 = make(shared_heads)

    def _route(self, x: torch.Tensor, q: torch.Tensor):
        """Per-head gates [B, T, H], the routed heads' selection [B, T, E] (or None) and l_aux."""
        batch, length, _ = x.shape
        hs, routed = self.shared_heads, self.n_heads - self.shared_heads
        shared = None
        if hs > 0:
            shared = (torch.softmax(self.wg_1(x), -1) * hs if self.wg_1 is not None
                      else x.new_ones(batch, length, hs))
        if self.routed_k == 0:
            gates = (torch.cat([shared, x.new_zeros(batch, length, routed)], -1) if routed > 0
                     else shared)
            return gates, None, None
        if self.router == "learned":
            probs = torch.softmax(self.wg(x), -1)
        else:
            norms = q[:, hs:].norm(2, -1).transpose(1, 2)  # [B, T, E], before RoPE
            probs = torch.softmax(norms / norms.std(-1, unbiased=True, keepdim=True), -1)
        indices = probs.topk(self.routed_k, -1).indices
        selected = torch.zeros_like(probs).scatter(-1, indices, 1.0)
        balance = None
        if self.router == "learned":
            if self.training:
                p = probs.reshape(-1, routed).mean(0)
                f = selected.reshape(-1, routed).mean(0)
                balance = (p * f).mean() * float(routed * routed)
            kept = probs * selected
            denom = kept.sum(-1, keepdim=True).clamp_min(torch.finfo(kept.dtype).eps)
            routed_gates = kept / denom * float(self.routed_k)
        else:
            routed_gates = selected + (probs - probs.detach()) if self.training else selected
        if hs == 0:
            gates = routed_gates
        elif self.router == "learned":
            mix = torch.softmax(self.wg_0(x), -1) * 2.0
            gates = torch.cat([mix[..., :1] * shared, mix[..., 1:] * routed_gates], -1)
        else:
            gates = torch.cat([shared, routed_gates], -1)
        return gates, selected.to(torch.bool), balance

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        h, d, hs = self.n_heads, self.head_dim, self.shared_heads
        heads = self.qkv(x).view(batch, length, 3, h, d).permute(2, 0, 3, 1, 4)
        q, k, v = heads[0], heads[1], heads[2]
        gates, active, balance = self._route(x, q)
        if self.rope:
            positions = torch.arange(length, device=x.device)
            q = apply_rope(q, positions, self.rope_theta, scaling=self.rope_scaling)
            k = apply_rope(k, positions, self.rope_theta, scaling=self.rope_scaling)
        scale = 1.0 / math.sqrt(d)
        sparse = (self.sparse_compute and 0 < self.routed_k < h - hs
                  and not (self.router == "qnorm" and self.training))
        if sparse:
            y = ops.moh_attention(q, k, v, active, hs, self.mask, self.block_size, scale)
        else:
            y = ops.attention(q, k, v, self.mask, self.block_size, scale)
        y = y * gates.transpose(1, 2).unsqueeze(-1).to(y.dtype)
        self.balance_loss = None if balance is None else balance * self.balance_coef
        return self.proj(y.transpose(1, 2).reshape(batch, length, h * d))


class HeadRMSNorm(nn.Module):
    """DIFF's per-head RMSNorm (``subln``): normalised in float32 (float64 stays), then ·weight."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        compute = x if x.dtype == torch.float64 else x.float()
        normed = compute * torch.rsqrt(compute.pow(2).mean(-1, keepdim=True) + self.eps)
        return normed.to(x.dtype) * self.weight.to(x.dtype)


def diff_lambda_init(layer_index: int, offset: float = 0.0) -> float:
    """DIFF's schedule lambda_init = 0.8 - 0.6·exp(-0.3·(layer_index + offset))."""
    return 0.8 - 0.6 * math.exp(-0.3 * (layer_index + offset))


class DiffAttention(nn.Module):
    """Differential attention (``attention=diff``; with ``n_signal``/``n_noise`` also ``gda``).

    Output head i: ``(1 - lambda_init) · subln((A1_i - λ·A2_{i // G}) V)`` with signal maps A1,
    noise maps A2 (G = n_signal / n_noise signal heads per noise head) and
    ``λ = exp(λq1·λk1) - exp(λq2·λk2) + lambda_init`` (``attnlab.ops.diff_attention``).
    Shapes as modules/attention/diff.h: q/k head dim d = d_model / n_heads, values 2d; DIFF uses
    n_heads / 2 differential heads and n_kv_heads / 2 kv pairs. Parameter names are attnlab's
    (unilm's layout): ``q_proj`` (rows per noise group [G signal heads, 1 noise head] × d),
    ``k_proj`` (per kv pair [k1, k2]), ``v_proj`` (per kv pair 2d), ``out_proj``,
    ``lambda_q1``, ``lambda_k1``, ``lambda_q2``, ``lambda_k2`` [d] and ``subln.weight`` [2d].
    lambda_init: None = ``diff_lambda_init(layer_index, lambda_init_offset)``.
    x: [B, T, d_model] -> [B, T, d_model].
    """

    def __init__(self, d_model: int, n_heads: int, n_kv_heads: Optional[int] = None, *,
                 n_signal: Optional[int] = None, n_noise: Optional[int] = None,
                 n_kv_pairs: Optional[int] = None, lambda_init: Optional[float] = None,
                 layer_index: int = 0, lambda_init_offset: float = 0.0, subln_eps: float = 1e-5,
                 rope: bool = True, rope_style: str = "interleaved", mask: str = "causal",
                 block_size: int = 0, rope_theta: float = 10000.0,
                 rope_scaling: Optional[RopeScaling] = None) -> None:
        super().__init__()
        if n_heads <= 0 or d_model % n_heads != 0:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        _check_mask(mask)
        if rope_style == "neox":
            rope_style = "rotate_half"
        if rope_style not in ("interleaved", "rotate_half"):
            raise ValueError(f"rope_style must be interleaved or rotate_half, got {rope_style!r}")
        kv_heads = n_kv_heads or n_heads
        if n_signal is None and n_noise is None:
            if n_heads % 2 != 0:
                raise ValueError(f"n_heads ({n_heads}) must be even: DIFF pairs heads")
            if kv_heads % 2 != 0 or n_heads % kv_heads != 0:
                raise ValueError(f"n_kv_heads ({kv_heads}) must be even and divide n_heads")
            n_signal = n_noise = n_heads // 2
            n_kv_pairs = kv_heads // 2 if n_kv_pairs is None else n_kv_pairs
        elif n_signal is None or n_noise is None:
            raise ValueError("n_signal and n_noise go together")
        n_kv_pairs = n_noise if n_kv_pairs is None else n_kv_pairs
        if n_signal <= 0 or n_noise <= 0 or n_signal % n_noise != 0:
            raise ValueError(f"n_signal ({n_signal}) must be a positive multiple of n_noise "
                             f"({n_noise})")
        if n_kv_pairs <= 0 or n_noise % n_kv_pairs != 0:
            raise ValueError(f"n_kv_pairs ({n_kv_pairs}) must divide n_noise ({n_noise})")
        d = d_model // n_heads
        if rope and d % 2 != 0:
            raise ValueError(f"RoPE needs an even head dim, got {d}")
        self.n_signal, self.n_noise, self.n_kv, self.head_dim = n_signal, n_noise, n_kv_pairs, d
        self.lambda_init = (diff_lambda_init(layer_index, lambda_init_offset)
                            if lambda_init is None else float(lambda_init))
        self.rope, self.rope_style = rope, rope_style
        self.rope_theta, self.rope_scaling = rope_theta, rope_scaling
        self.mask, self.block_size = mask, block_size
        self.q_proj = nn.Linear(d_model, (n_signal + n_noise) * d, bias=False)
        self.k_proj = nn.Linear(d_model, 2 * n_kv_pairs * d, bias=False)
        self.v_proj = nn.Linear(d_model, 2 * n_kv_pairs * d, bias=False)
        self.out_proj = nn.Linear(n_signal * 2 * d, d_model, bias=False)
        self.lambda_q1 = nn.Parameter(torch.randn(d) * 0.1)
        self.lambda_k1 = nn.Parameter(torch.randn(d) * 0.1)
        self.lambda_q2 = nn.Parameter(torch.randn(d) * 0.1)
        self.lambda_k2 = nn.Parameter(torch.randn(d) * 0.1)
        self.subln = HeadRMSNorm(2 * d, subln_eps)

    def lambda_full(self) -> torch.Tensor:
        """λ = exp(λq1·λk1) - exp(λq2·λk2) + lambda_init, a 0-dim tensor."""
        return (torch.exp((self.lambda_q1 * self.lambda_k1).sum())
                - torch.exp((self.lambda_q2 * self.lambda_k2).sum()) + self.lambda_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, _ = x.shape
        d, group = self.head_dim, self.n_signal // self.n_noise
        q = self.q_proj(x).view(batch, length, self.n_noise, group + 1, d)
        q_signal = q[:, :, :, :group].reshape(batch, length, self.n_signal, d).transpose(1, 2)
        q_noise = q[:, :, :, group].transpose(1, 2)
        k = self.k_proj(x).view(batch, length, self.n_kv, 2, d).transpose(1, 2)
        k1, k2 = k[:, :, :, 0], k[:, :, :, 1]
        v = self.v_proj(x).view(batch, length, self.n_kv, 2 * d).transpose(1, 2)
        if self.rope:
            positions = torch.arange(length, device=x.device)

            def rope(t: torch.Tensor) -> torch.Tensor:
                return apply_rope(t, positions, self.rope_theta, style=self.rope_style,
                                  scaling=self.rope_scaling)

            q_signal, q_noise, k1, k2 = rope(q_signal), rope(q_noise), rope(k1), rope(k2)
        lam = self.lambda_full().to(q_signal.dtype)
        heads = ops.diff_attention(q_signal, q_noise, k1, k2, v, lam, self.mask,
                                   self.block_size, 1.0 / math.sqrt(d))
        heads = self.subln(heads) * (1.0 - self.lambda_init)
        return self.out_proj(heads.transpose(1, 2).reshape(batch, length, self.n_signal * 2 * d))


def gda_heads(n_heads: int, n_signal: Optional[int] = None, n_noise: Optional[int] = None,
              group_ratio: int = 3) -> tuple:
    """GDA's (n_signal, n_noise) from configs/attention/gda.yaml's keys (modules/attention/gda.h):
    both given; one given (the other fills n_heads); neither: n_noise = n_heads / (G + 1)."""
    if n_signal is not None and n_noise is not None:
        return n_signal, n_noise
    if n_signal is not None or n_noise is not None:
        given = n_signal if n_signal is not None else n_noise
        return (given, n_heads - given) if n_signal is not None else (n_heads - given, given)
    if group_ratio <= 0 or n_heads % (group_ratio + 1) != 0:
        raise ValueError(f"n_heads ({n_heads}) is not divisible by group_ratio + 1 "
                         f"({group_ratio + 1}); give n_signal and n_noise")
    noise = n_heads // (group_ratio + 1)
    return n_heads - noise, noise
