// `attnlab probe probe.target=masked_diffusion_loss`: one masked-diffusion training step of a
// freshly initialised GPT (model.*, attention.*, objective.* from the composed config) on random
// non-[MASK] token ids, dumped for checks outside attnlab: logits, targets (x_0), input (x_t),
// the mask decisions, t, p, the loss and its gradient w.r.t. the logits. It runs the objective's
// own step function (masked_diffusion_step), so the dump shows exactly what training computes.
#pragma once

#include "config/config_node.h"
#include "io/weights_io.h"

namespace attnlab {

// Reads seed, tokenizer.*, model.*, attention.*, objective.* (masked-diffusion options; they
// apply whatever objective.name is) and probe.{batch,seq_len,dtype,training}. Keys written:
// logits [B, T, V], targets [B, T], input [B, T], masked [B, T] (bool), t [B, T], p [B, T],
// loss (scalar), logit_grad [B, T, V] and token_count (scalar: the loss's denominator).
StateDict probe_masked_diffusion_loss(const ConfigNode& config);

}  // namespace attnlab
