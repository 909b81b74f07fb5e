"""Fake kernels and autograd formulas of the ``torch.ops.attnlab`` operators.

Fake kernels give torch.compile and meta tensors the output shapes without running a kernel.
Autograd: each forward operator's backward is its ``<name>_backward`` operator (python/csrc/
ops.cpp), which recomputes the forward and applies attnlab's own backward kernels; no double
backward.
"""

from __future__ import annotations

import torch
from torch.library import register_autograd, register_fake

# ---- fake kernels -------------------------------------------------------------------------------


@register_fake("attnlab::rms_norm")
def _rms_norm_fake(x, weight, eps=1e-5):
    return x.new_empty(x.shape)


@register_fake("attnlab::rms_norm_backward")
def _rms_norm_backward_fake(grad, x, weight, eps):
    return x.new_empty(x.shape), weight.new_empty(weight.shape)


@register_fake("attnlab::gelu_tanh")
def _gelu_tanh_fake(x):
    return x.new_empty(x.shape)


@register_fake("attnlab::gelu_tanh_backward")
def _gelu_tanh_backward_fake(grad, x):
    return x.new_empty(x.shape)


def _attention_out(q, v):
    torch._check(q.dim() == 4 and v.dim() == 4, lambda: "attnlab attention: q, v must be 4-D")
    return q.new_empty((q.shape[0], q.shape[1], q.shape[2], v.shape[3]))


@register_fake("attnlab::attention")
def _attention_fake(q, k, v, mask="causal", block_size=0, scale=None):
    return _attention_out(q, v)


@register_fake("attnlab::attention_backward")
def _attention_backward_fake(grad, q, k, v, mask, block_size, scale):
    return q.new_empty(q.shape), k.new_empty(k.shape), v.new_empty(v.shape)


@register_fake("attnlab::softplus_attention")
def _softplus_attention_fake(q, k, v, mask="causal", block_size=0, reweight=False, power=15.0,
                             free_rows=3):
    return _attention_out(q, v)


@register_fake("attnlab::softplus_attention_backward")
def _softplus_attention_backward_fake(grad, q, k, v, mask, block_size, reweight, power, free_rows):
    return q.new_empty(q.shape), k.new_empty(k.shape), v.new_empty(v.shape)


@register_fake("attnlab::moh_attention")
def _moh_attention_fake(q, k, v, active, shared_heads, mask="causal", block_size=0, scale=None):
    return _attention_out(q, v)


@register_fake("attnlab::moh_attention_backward")
def _moh_attention_backward_fake(grad, q, k, v, active, shared_heads, mask, block_size, scale):
    return q.new_empty(q.shape), k.new_empty(k.shape), v.new_empty(v.shape)


@register_fake("attnlab::diff_attention")
def _diff_attention_fake(q_signal, q_noise, k1, k2, v, lambda_full, mask="causal",
                         block_size=0, scale=None):
    return _attention_out(q_signal, v)


@register_fake("attnlab::diff_attention_backward")
def _diff_attention_backward_fake(grad, q_signal, q_noise, k1, k2, v, lambda_full, mask,
                                  block_size, scale):
    return tuple(t.new_empty(t.shape) for t in (q_signal, q_noise, k1, k2, v, lambda_full))


def _focal_shape(logits, mode, reduction):
    if reduction != "none":
        return ()
    return tuple(logits.shape[:-1]) if mode == "softmax" else tuple(logits.shape)


@register_fake("attnlab::focal_loss")
def _focal_loss_fake(logits, targets, mode="softmax", gamma=2.0, alpha=None, ignore_index=-100,
                     label_smoothing=0.0, smoothing_mode="pt", reduction="mean"):
    return logits.new_empty(_focal_shape(logits, mode, reduction))


@register_fake("attnlab::focal_loss_backward")
def _focal_loss_backward_fake(grad, logits, targets, mode, gamma, alpha, ignore_index,
                              label_smoothing, smoothing_mode, reduction):
    return logits.new_empty(logits.shape)


@register_fake("attnlab::decorrelation_loss")
def _decorrelation_loss_fake(hidden, prefix_length=-1, token_mask=None):
    return hidden.new_empty(())


@register_fake("attnlab::decorrelation_loss_backward")
def _decorrelation_loss_backward_fake(grad, hidden, prefix_length, token_mask):
    return hidden.new_empty(hidden.shape)


@register_fake("attnlab::segregation_loss")
def _segregation_loss_fake(probs, groups="heads", heads=None, concept_positions=None,
                           concept_token_ids=None, input=None, key_padding=None,
                           pair_reduction=None, retention_weight=0.0, retention_threshold=0.5):
    return probs.new_empty(())


@register_fake("attnlab::segregation_loss_backward")
def _segregation_loss_backward_fake(grad, probs, groups, heads, concept_positions,
                                    concept_token_ids, input, key_padding, pair_reduction,
                                    retention_weight, retention_threshold):
    return probs.new_empty(probs.shape)


# ---- autograd ----------------------------------------------------------------------------------


def _save_inputs(ctx, inputs, output):
    # Tensors go through save_for_backward; the other arguments are plain attributes.
    ctx.tensor_slots = [i for i, a in enumerate(inputs) if isinstance(a, torch.Tensor)]
    ctx.others = [None if isinstance(a, torch.Tensor) else a for a in inputs]
    ctx.save_for_backward(*(inputs[i] for i in ctx.tensor_slots))


def _inputs(ctx):
    args = list(ctx.others)
    for slot, tensor in zip(ctx.tensor_slots, ctx.saved_tensors):
        args[slot] = tensor
    return args


def _rms_norm_backward(ctx, grad):
    x, weight, eps = _inputs(ctx)
    gx, gw = torch.ops.attnlab.rms_norm_backward(grad, x, weight, eps)
    return gx, gw, None


def _gelu_tanh_backward(ctx, grad):
    (x,) = _inputs(ctx)
    return torch.ops.attnlab.gelu_tanh_backward(grad, x)


def _attention_backward(ctx, grad):
    q, k, v, mask, block_size, scale = _inputs(ctx)
    gq, gk, gv = torch.ops.attnlab.attention_backward(grad, q, k, v, mask, block_size, scale)
    return gq, gk, gv, None, None, None


def _softplus_attention_backward(ctx, grad):
    q, k, v, *rest = _inputs(ctx)
    gq, gk, gv = torch.ops.attnlab.softplus_attention_backward(grad, q, k, v, *rest)
    return (gq, gk, gv) + (None,) * len(rest)


def _moh_attention_backward(ctx, grad):
    q, k, v, active, *rest = _inputs(ctx)
    gq, gk, gv = torch.ops.attnlab.moh_attention_backward(grad, q, k, v, active, *rest)
    return (gq, gk, gv, None) + (None,) * len(rest)


def _diff_attention_backward(ctx, grad):
    q_signal, q_noise, k1, k2, v, lambda_full, *rest = _inputs(ctx)
    grads = torch.ops.attnlab.diff_attention_backward(grad, q_signal, q_noise, k1, k2, v,
                                                      lambda_full, *rest)
    return tuple(grads) + (None,) * len(rest)


def _focal_loss_backward(ctx, grad):
    logits, targets, *rest = _inputs(ctx)
    g = torch.ops.attnlab.focal_loss_backward(grad, logits, targets, *rest)
    return (g, None) + (None,) * len(rest)


register_autograd("attnlab::rms_norm", _rms_norm_backward, setup_context=_save_inputs)
register_autograd("attnlab::gelu_tanh", _gelu_tanh_backward, setup_context=_save_inputs)
register_autograd("attnlab::attention", _attention_backward, setup_context=_save_inputs)
register_autograd("attnlab::softplus_attention", _softplus_attention_backward,
                  setup_context=_save_inputs)
def _decorrelation_loss_backward(ctx, grad):
    hidden, *rest = _inputs(ctx)
    return (torch.ops.attnlab.decorrelation_loss_backward(grad, hidden, *rest),) + (None,) * len(
        rest)


def _segregation_loss_backward(ctx, grad):
    probs, *rest = _inputs(ctx)
    return (torch.ops.attnlab.segregation_loss_backward(grad, probs, *rest),) + (None,) * len(rest)


register_autograd("attnlab::decorrelation_loss", _decorrelation_loss_backward,
                  setup_context=_save_inputs)
register_autograd("attnlab::segregation_loss", _segregation_loss_backward,
                  setup_context=_save_inputs)
register_autograd("attnlab::moh_attention", _moh_attention_backward,
                  setup_context=_save_inputs)
register_autograd("attnlab::diff_attention", _diff_attention_backward,
                  setup_context=_save_inputs)
register_autograd("attnlab::focal_loss", _focal_loss_backward, setup_context=_save_inputs)
