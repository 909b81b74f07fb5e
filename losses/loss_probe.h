// Loss probe: runs one loss term (or a whole composed LossSet) on given or synthetic inputs and
// returns the inputs, the loss and the gradients w.r.t. every input as a flat name -> tensor map,
// for `attnlab probe probe.target=loss` to save as a .pt file and compare with a Python
// reference. Keys: logits, targets, hidden.<l>, attn.<l>, input (token ids, if any), loss,
// grad.logits, grad.hidden.<l>, grad.attn.<l> (zeros for inputs the loss does not read), plus
// the LossResult entries under their own names ("loss/<term>", "stat/...", detached).
#pragma once

#include <torch/torch.h>
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <map>
#include <string>

namespace attnlab {

struct LossProbeInputs {
  torch::Tensor logits;  // [B, T, V] (targets [B, T]) or [B, C] (targets = labels [B])
  torch::Tensor targets;
  torch::Tensor input;      // [B, T] token ids (segregation concept_token_ids); optional
  torch::Tensor loss_mask;  // optional [B, T] bool
  std::map<int64_t, torch::Tensor> hidden;  // [B, T, C] per block
  std::map<int64_t, torch::Tensor> attn;    // [B, H, T, T] per block (rows sum to 1)
};

struct LossProbeShape {
  int64_t batch = 2, seq_len = 8, vocab = 11, d_model = 16, n_heads = 4, n_layers = 3;
  bool classification = false;  // logits [B, vocab] and labels instead of [B, T, V]
  torch::Dtype dtype = torch::kFloat;
};

// Deterministic random inputs (seeded): every block's hidden states and causal attention maps.
// `probe.dtype` (float32 | float64) for every probe target; UserError naming the key otherwise.
torch::ScalarType probe_dtype(const YAML::Node& config);

LossProbeInputs synthetic_loss_inputs(const LossProbeShape& shape, uint64_t seed);

// One term: `term` is its map without or with `name` ({gamma: 2, ...}); `n_layers` = the number
// of hidden/attn blocks the term may refer to.
std::map<std::string, torch::Tensor> probe_loss_term(const std::string& name,
                                                     const YAML::Node& term,
                                                     const LossProbeInputs& inputs,
                                                     int64_t n_layers);

// A composed config (`loss.terms`), e.g. the `loss=<name>` group of a probe run. Terms with
// data-dependent weights (focal `alpha: auto`) get the class counts of the targets (entries
// outside [0, logits' last dim) — ignore_index — are not counted).
std::map<std::string, torch::Tensor> probe_loss_set(const YAML::Node& config,
                                                    const LossProbeInputs& inputs,
                                                    int64_t n_layers);

// The `loss` probe target: `attnlab probe probe.target=loss loss=<name> ...`. Synthetic inputs
// (seeded by `seed`) of shape probe.{batch, seq_len, loss_vocab, loss_classification, dtype}
// and model.{d_model, n_heads, n_layers} (one hidden state and causal attention map per block),
// run through the composed loss.terms; returns probe_loss_set's dictionary.
std::map<std::string, torch::Tensor> probe_loss_from_config(const YAML::Node& config);

}  // namespace attnlab
