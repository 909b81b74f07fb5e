// Loss probe: runs one loss term (or a whole composed LossSet) on given or synthetic inputs and
// returns the inputs, the loss and the gradients w.r.t. every input as a flat name -> tensor map,
// for `attnlab probe probe.target=loss` to save as a .pt file and compare with a Python
// reference. Keys: logits, targets, hidden.<l>, attn.<l>, input (token ids, if any), loss,
// grad.logits, grad.hidden.<l>, grad.attn.<l> (zeros for inputs the loss does not read), plus
// the LossResult entries under their own names ("loss/<term>", "stat/...", detached).
#pragma once

#include <torch/arg.h>
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>

#include "config/option_schema.h"

namespace attnlab {

// The `probe` group of `attnlab probe` (configs/probe/default.yaml holds the same defaults; a test
// keeps them equal). The loss, attention and masked-diffusion probes read it.
struct ProbeOptions {
  TORCH_ARG(std::string, target) = "attention";
  TORCH_ARG(int64_t, batch) = 2;
  TORCH_ARG(int64_t, seq_len) = 16;
  TORCH_ARG(std::string, dtype) = "float32";
  TORCH_ARG(bool, training) = false;
  TORCH_ARG(int64_t, layer_index) = 0;
  TORCH_ARG(double, dropout) = 0.0;
  TORCH_ARG(int64_t, loss_vocab) = 11;
  TORCH_ARG(bool, loss_classification) = false;
  TORCH_ARG(std::string, out) = "probe.pt";

 public:
  template <class V>
  void visit(V& v) {
    v("target", target(), "which part to probe: attention | loss | masked_diffusion_loss");
    v("batch", batch(), "batch size of the random input", config::at_least(1));
    v("seq_len", seq_len(), "sequence length of the random input", config::at_least(1));
    v("dtype", dtype(), "float32 | float64", config::one_of({"float32", "float64"}));
    v("training", training(),
      "module.train(): training-only paths (MoH balance loss, STE, dropout)");
    v("layer_index", layer_index(),
      "depth of the probed layer (DIFF/GDA lambda_init, MoH per-layer lists)", config::at_least(0));
    v("dropout", dropout(), "attention dropout of the probed layer", config::in_range(0.0, 1.0));
    v("loss_vocab", loss_vocab(), "target=loss: classes of the synthetic logits",
      config::at_least(2));
    v("loss_classification", loss_classification(),
      "target=loss: per-sequence logits [batch, loss_vocab] instead of per token");
    v("out", out(), "the .pt file the probe writes");
  }
};

// Binds the `probe` group (strict: one line naming the key). Defined for YAML::Node.
template <class ConfigTree>
ProbeOptions probe_options(const ConfigTree& config);

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

// probe.dtype as a torch dtype.
torch::ScalarType probe_dtype(const ProbeOptions& options);

LossProbeInputs synthetic_loss_inputs(const LossProbeShape& shape, uint64_t seed);

// One term: `term` is its map without or with `name` ({gamma: 2, ...}); `n_layers` = the number
// of hidden/attn blocks the term may refer to.
template <class ConfigTree>
std::map<std::string, torch::Tensor> probe_loss_term(const std::string& name,
                                                     const ConfigTree& term,
                                                     const LossProbeInputs& inputs,
                                                     int64_t n_layers);

// A composed config (`loss.terms`), e.g. the `loss=<name>` group of a probe run. Terms with
// data-dependent weights (focal `alpha: auto`) get the class counts of the targets (entries
// outside [0, logits' last dim) — ignore_index — are not counted).
template <class ConfigTree>
std::map<std::string, torch::Tensor> probe_loss_set(const ConfigTree& config,
                                                    const LossProbeInputs& inputs,
                                                    int64_t n_layers);

// The `loss` probe target: `attnlab probe probe.target=loss loss=<name> ...`. Synthetic inputs
// (seeded by `seed`) of shape probe.{batch, seq_len, loss_vocab, loss_classification, dtype}
// and model.{d_model, n_heads, n_layers} (one hidden state and causal attention map per block),
// run through the composed loss.terms; returns probe_loss_set's dictionary.
template <class ConfigTree>
std::map<std::string, torch::Tensor> probe_loss_from_config(const ConfigTree& config);

}  // namespace attnlab
