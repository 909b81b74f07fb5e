// LossSet: the training objective composed from `loss.terms` in the config, e.g.
//   loss:
//     terms:
//       - {name: cross_entropy, weight: 1.0}
//       - {name: decorrelation, weight: 1.0, factor: 1.0, layers: [0, 1]}
// It requests the union of the terms' taps from the model and returns
//   total = sum_i weight_i * term_i + sum of ModelOutput::aux_losses (already weighted by modules)
// with every piece reported separately: "loss/<term>" (UNweighted term value, so exp of
// loss/cross_entropy is the perplexity), "aux/<name>" (as added to the total) and detached
// diagnostics under "stat/..." (never part of the total). A term name listed twice is reported
// as "loss/<term>_<index in loss.terms>" from its second occurrence on.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "losses/loss_term.h"
#include "modules/model_output.h"

namespace attnlab {

struct LossResult {
  torch::Tensor total;
  std::map<std::string, torch::Tensor> terms;
};

class LossSet {
 public:
  // `config`: the composed run config (reads `loss.terms`); `n_layers`: the model's block count.
  // Defined for YAML::Node.
  template <class ConfigTree>
  LossSet(const ConfigTree& config, int64_t n_layers);

  TapRequest taps() const { return taps_; }
  LossResult compute(const ModelOutput& output, const Batch& batch) const;
  // Forwards training-split class counts to every term that uses them (focal `alpha: auto`).
  void set_class_counts(const std::vector<int64_t>& counts);

  struct Entry {
    std::string key;  // "loss/<name>"
    std::string name;
    double weight = 1.0;
    std::unique_ptr<LossTerm> term;
  };
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  std::vector<Entry> entries_;
  TapRequest taps_;
};

}  // namespace attnlab
