// The loss-term interface and the loss-term registry. A term is one named piece of the training
// objective (cross_entropy, focal, decorrelation, segregation); `loss.terms` in the config lists
// the terms with their weights and term-specific keys, and LossSet (losses/loss_set.h) sums them.
// Each term declares the model internals ("taps") it reads, so the model materialises hidden
// states or attention probabilities only when some term needs them.
#pragma once

#include <torch/torch.h>

#include <any>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/registry.h"
#include "config/option_schema.h"
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

// Where a term is built: its entry in the config (for messages) and the model's depth (to resolve
// layer lists).
struct LossTermContext {
  std::string where;  // "loss.terms[2]"
  int64_t n_layers = 1;

  // "loss.terms[2].gamma"
  std::string key_name(const std::string& key) const { return where + "." + key; }
  // A UserError naming the term's key: "config key 'loss.terms[2].gamma': <what>".
  [[noreturn]] void fail(const std::string& key, const std::string& what) const;
  // Block indices (Python-style negatives: -1 = the last block) checked against n_layers,
  // sorted and without repeats; UserError naming `key` when one is out of range or none is left.
  std::vector<int64_t> resolve_layers(const std::string& key, std::vector<int64_t> layers) const;
};

// A registry entry: the term's options struct (its keys besides `name` and `weight`, which every
// term has) and its factory, which receives the bound struct in a std::any. Made by
// loss_term_entry<Term, Options>() (losses/loss_term_entry.h).
struct LossTermSpec {
  config::ErasedOptions options;
  std::function<std::unique_ptr<LossTerm>(const std::any& options, const LossTermContext& context)>
      make;
};

// loss_registry.cpp: one line per term.
Registry<LossTermSpec>& loss_registry();

// Builds a term from its config map ({name: focal, weight: 1.0, gamma: 2}): the name picks the
// entry, the other keys bind strictly into its options. `where` names the map in messages, e.g.
// "loss.terms[1]". Defined for YAML::Node.
template <class ConfigTree>
std::unique_ptr<LossTerm> make_loss_term(const ConfigTree& term, const std::string& where,
                                         int64_t n_layers);

}  // namespace attnlab
