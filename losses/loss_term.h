// The loss-term interface and the loss-term registry. A term is one named piece of the training
// objective (cross_entropy, focal, decorrelation, segregation); `loss.terms` in the config lists
// the terms with their weights and term-specific keys, and LossSet (losses/loss_set.h) sums them.
// Each term declares the model internals ("taps") it reads, so the model materialises hidden
// states or attention probabilities only when some term needs them.
#pragma once

#include <torch/torch.h>
#include <yaml-cpp/yaml.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/registry.h"
#include "losses/term_config.h"
#include "modules/model_output.h"

namespace attnlab {

class LossTerm {
 public:
  virtual ~LossTerm() = default;
  // The taps this term reads for a model with `n_layers` blocks. Only set what is read:
  // TapRequest::logits defaults to true, so terms that do not read logits must clear it.
  virtual TapRequest taps(int64_t n_layers) const = 0;
  // The unweighted term value (a scalar with a graph). Detached diagnostics may be added to
  // `stats` under "stat/..." keys; LossSet reports them but never adds them to the total.
  virtual torch::Tensor compute(const ModelOutput& output, const Batch& batch,
                                std::map<std::string, torch::Tensor>& stats) const = 0;
  // Training-split class counts for terms with data-dependent weights (focal `alpha: auto`).
  // The classification trainer calls this through LossSet::set_class_counts; default: unused.
  virtual void set_class_counts(const std::vector<int64_t>& counts) { (void)counts; }
};

// A registry entry: the term-specific keys it accepts (besides `name` and `weight`, which every
// term accepts) and a factory. `n_layers` lets terms resolve layer lists at construction.
struct LossTermSpec {
  std::vector<std::string> keys;
  std::function<std::unique_ptr<LossTerm>(const TermConfig& config, int64_t n_layers)> make;
};

// loss_registry.cpp: one line per term.
Registry<LossTermSpec>& loss_registry();

// Builds a term from its config map (validates keys against the spec). `where` names the map in
// messages, e.g. "loss.terms[1]".
std::unique_ptr<LossTerm> make_loss_term(const YAML::Node& term, const std::string& where,
                                         int64_t n_layers);

}  // namespace attnlab
