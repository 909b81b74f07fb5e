"""attnlab's auxiliary loss terms as differentiable functions (``attnlab.losses``).

Each function runs the C++ loss term (losses/) through an operator with autograd and a fake
kernel: ``decorrelation`` (BOS decorrelation of hidden states, losses/decorrelation.h) and
``segregation`` (A-STAR's attention segregation and retention, losses/segregation.h). They take
the tensors the trainer's terms read from the model (block outputs, attention probabilities),
one per layer, and average over layers as the terms do.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch

__all__ = ["decorrelation", "segregation"]

Layers = Union[torch.Tensor, Sequence[torch.Tensor]]


def _layers(values: Layers, what: str) -> list:
    layers = [values] if isinstance(values, torch.Tensor) else list(values)
    if not layers:
        raise ValueError(f"{what}: expected a tensor or a non-empty list of tensors, one per "
                         "layer")
    return layers


def decorrelation(hidden_states: Layers, prefix_length: Optional[int] = None,
                  token_mask: Optional[torch.Tensor] = None,
                  factor: float = 1.0) -> torch.Tensor:
    """The ``decorrelation`` term: factor · mean_l mean_{b, s=1..P} cos(h_l[b, 0], h_l[b, s])².

    hidden_states: [B, T, C] (float32 or float64), or a list with one per layer (the blocks the
    term's ``layers`` key names). Position 0 is BOS; prefix_length P: the tokens after it that
    count (None: all, T - 1). token_mask: bool [B, T], true = counted (the term's ``token_mask``
    of loss_mask or key_padding); the mean is then over the counted (b, s). Cosines use
    F.normalize with eps 1e-12. Returns a scalar in the hidden states' dtype.
    """
    layers = _layers(hidden_states, "attnlab.losses.decorrelation: hidden_states")
    p = -1 if prefix_length is None else int(prefix_length)
    total = sum(torch.ops.attnlab.decorrelation_loss(h, p, token_mask) for h in layers)
    return total * (factor / len(layers))


def segregation(attention_probs: Layers, groups: str = "heads",
                heads: Optional[Sequence[int]] = None,
                concept_positions: Optional[Sequence[int]] = None,
                concept_token_ids: Optional[Sequence[int]] = None,
                input_ids: Optional[torch.Tensor] = None,
                key_padding: Optional[torch.Tensor] = None,
                pair_reduction: Optional[str] = None, retention_weight: float = 0.0,
                retention_threshold: float = 0.5) -> torch.Tensor:
    """The ``segregation`` term (A-STAR) on attention probabilities [B, H, T_q, T_k] per layer.

    groups "heads": every pair of the selected ``heads`` (default all) is pushed apart on each
    query row, overlap(a, b) = Σ min(a, b) / Σ (a + b) in [0, 0.5], mean over pairs and rows
    (real query rows only with key_padding, bool [B, T_q]). groups "tokens": the maps are the
    attention that concept keys receive (columns of the head-averaged map, over queries), by
    ``concept_positions`` or ``concept_token_ids`` (every occurrence in ``input_ids`` [B, T_k]),
    summed over pairs. pair_reduction: "mean" or "sum" (None: the group's default).
    retention_weight > 0 adds A-STAR's retention loss against the binarised (min-max,
    ``retention_threshold``) detached maps of this call. Gradients flow to the probabilities.
    Mean over layers; a scalar in the probabilities' dtype.
    """
    layers = _layers(attention_probs, "attnlab.losses.segregation: attention_probs")
    def opt(values):
        return None if values is None else [int(v) for v in values]
    total = sum(torch.ops.attnlab.segregation_loss(
        p, groups, opt(heads), opt(concept_positions), opt(concept_token_ids), input_ids,
        key_padding, pair_reduction, float(retention_weight), float(retention_threshold))
        for p in layers)
    return total / len(layers)
