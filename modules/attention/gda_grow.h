// Group-differentiated growth of a GDA (or DIFF) layer: more signal heads, same noise heads.
// The paper's exact recipe is unconfirmed (docs/methods.md §2, open question 3); the recipe here is
// function-preserving: inside each noise group the G old signal heads are replicated cyclically
// up to G' = n_signal' / n_noise (new head j' copies old head j' mod G: its q_proj rows), and
// each old head's out_proj column block is split evenly over its copies (divided by its copy
// count). A copy pairs with the same noise head and kv pair and subln is per head with shared
// weight, so every copy computes the same o_i and the copies' projections sum to the old one:
// the grown model computes exactly the same function. λ, k/v projections, noise heads unchanged.
// Optional `noise_std` jitters the replicated q rows (breaking the copies' symmetry at the price
// of exactness); an uneven split would also break symmetry but is not offered.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>

namespace attnlab {

struct GdaGrowOptions {
  int64_t n_signal = 0;    // new number of signal heads (a multiple of n_noise, >= the old one)
  double noise_std = 0.0;  // std of N(0, σ) added to replicated q rows (0 = exact function)
};

struct GdaGrowReport {
  int64_t layers = 0;  // differential-attention layers grown
  int64_t old_signal = 0, n_noise = 0, n_kv = 0;
};

// Grows every differential-attention layer of `state` (keys <P>q_proj.weight with <P>lambda_q1
// and <P>subln.weight alongside); other tensors are copied. UserError when no layer is found or
// the new count is invalid. `report` (optional) receives the layer shapes.
std::map<std::string, torch::Tensor> grow_gda_state(
    const std::map<std::string, torch::Tensor>& state, const GdaGrowOptions& options,
    GdaGrowReport* report = nullptr);

}  // namespace attnlab
