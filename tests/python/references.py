"""Plain-PyTorch references of the attnlab operators, written from the formulas (not from the
C++ code), for the float64 parity tests."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def rms_norm(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


def visible(mask, block_size, t_q, t_k):
    """[T_q, T_k] bool: queries at positions T_k - T_q .. T_k - 1, keys at 0 .. T_k - 1."""
    qpos = torch.arange(t_k - t_q, t_k)[:, None]
    kpos = torch.arange(t_k)[None, :]
    if mask == "causal":
        return kpos <= qpos
    if mask == "bidirectional":
        return torch.ones(t_q, t_k, dtype=torch.bool)
    return kpos // block_size <= qpos // block_size


def _repeat(k, q):
    return k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)


def attention(q, k, v, mask="causal", block_size=0, scale=None):
    k, v = _repeat(k, q), _repeat(v, q)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    m = visible(mask, block_size, q.shape[2], k.shape[2])
    scores = (q @ k.transpose(-2, -1) * scale).masked_fill(~m, float("-inf"))
    return torch.softmax(scores, -1) @ v


def softplus_attention(q, k, v, mask="causal", block_size=0, reweight=False, power=15.0,
                       free_rows=3):
    k, v = _repeat(k, q), _repeat(v, q)
    t_q, t_k = q.shape[2], k.shape[2]
    m = visible(mask, block_size, t_q, t_k).to(q.dtype)
    n = m.sum(-1, keepdim=True)
    qh, kh = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
    a = F.softplus(math.log(q.shape[-1]) * n.log() * (qh @ kh.transpose(-2, -1))) * m
    a = a / a.sum(-1, keepdim=True)
    if reweight:
        offset = (torch.arange(t_k - t_q, t_k) >= free_rows).to(q.dtype)[:, None]
        a = torch.relu(a * n - offset).pow(power)
        a = a / a.sum(-1, keepdim=True)
    return a @ v


def _reduce(loss, valid, weight, reduction):
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.sum() / valid.sum()
    return loss.sum() / (weight * valid).sum()


def focal_softmax(logits, targets, gamma, alpha, ignore_index, eps, smoothing_mode, reduction):
    c = logits.shape[-1]
    logp = torch.log_softmax(logits, -1)
    p = logp.exp()
    valid = targets != ignore_index
    t = torch.where(valid, targets, 0)
    a = torch.ones(c, dtype=logits.dtype) if alpha is None else alpha.expand(c)
    onehot = F.one_hot(t, c).to(logits.dtype)
    p_y = (p * onehot).sum(-1)
    a_y = a[t]
    if smoothing_mode == "pt":
        nll = -(logp * onehot).sum(-1)
        smooth = -(a * logp).sum(-1) / c
        loss = (1 - p_y).pow(gamma) * ((1 - eps) * a_y * nll + eps * smooth)
    else:
        qdist = (1 - eps) * onehot + eps / c
        loss = (qdist * a * (1 - p).pow(gamma) * -logp).sum(-1)
    loss = torch.where(valid, loss, 0.0)
    return _reduce(loss, valid, a_y, reduction)


def focal_sigmoid(logits, targets, gamma, alpha, ignore_index, eps, smoothing_mode, reduction):
    if targets.shape == logits.shape:
        valid = targets != ignore_index
        y = torch.where(valid, targets.to(logits.dtype), 0.0)
    else:
        row_valid = targets != ignore_index
        y = F.one_hot(torch.where(row_valid, targets, 0), logits.shape[-1]).to(logits.dtype)
        valid = row_valid[..., None].expand_as(logits)
    p = torch.sigmoid(logits)
    ys = y * (1 - eps) + eps / 2
    use_alpha = alpha is not None and not (alpha.dim() == 0 and alpha.item() < 0)
    a = alpha if use_alpha else None
    a_t = a * y + (1 - a) * (1 - y) if use_alpha else torch.ones_like(logits)
    if smoothing_mode == "pt":
        ce = -(ys * torch.log(p) + (1 - ys) * torch.log(1 - p))
        p_t = p * y + (1 - p) * (1 - y)
        loss = a_t * (1 - p_t).pow(gamma) * ce
    else:
        a_pos = a if use_alpha else 1.0
        a_neg = 1 - a if use_alpha else 1.0
        loss = (a_pos * ys * (1 - p).pow(gamma) * -torch.log(p)
                + a_neg * (1 - ys) * p.pow(gamma) * -torch.log(1 - p))
    loss = torch.where(valid, loss, 0.0)
    return _reduce(loss, valid, a_t, reduction)


def focal_loss(logits, targets, mode="softmax", gamma=2.0, alpha=None, ignore_index=-100,
               label_smoothing=0.0, smoothing_mode="pt", reduction="mean"):
    if alpha is not None and not isinstance(alpha, torch.Tensor):
        alpha = torch.tensor(alpha, dtype=logits.dtype)
    fn = focal_softmax if mode == "softmax" else focal_sigmoid
    return fn(logits, targets, gamma, alpha, ignore_index, label_smoothing, smoothing_mode,
              reduction)


def moh_attention(q, k, v, active, shared_heads, mask="causal", block_size=0, scale=None):
    y = attention(q, k, v, mask, block_size, scale)
    shared = torch.ones(active.shape[0], active.shape[1], shared_heads, dtype=torch.bool)
    rows = torch.cat([shared, active], -1).transpose(1, 2)[..., None]  # [B, H, T_q, 1]
    return y * rows.to(y.dtype)


def _masked_softmax(q, k, mask, block_size, scale):
    m = visible(mask, block_size, q.shape[2], k.shape[2])
    return torch.softmax((q @ k.transpose(-2, -1) * scale).masked_fill(~m, float("-inf")), -1)


def diff_attention(q_signal, q_noise, k1, k2, v, lambda_full, mask="causal", block_size=0,
                   scale=None):
    s, n, p = q_signal.shape[1], q_noise.shape[1], k1.shape[1]
    scale = 1.0 / math.sqrt(q_signal.shape[-1]) if scale is None else scale
    a1 = _masked_softmax(q_signal, k1.repeat_interleave(s // p, 1), mask, block_size, scale)
    a2 = _masked_softmax(q_noise, k2.repeat_interleave(n // p, 1), mask, block_size, scale)
    return (a1 - lambda_full * a2.repeat_interleave(s // n, 1)) @ v.repeat_interleave(s // p, 1)
