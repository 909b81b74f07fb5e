// Implementation of LossSet (losses/loss_set.h) and make_loss_term.
#include "losses/loss_set.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <set>

#include "common/config_access.h"
#include "common/suggestions.h"

namespace attnlab {

void LossTermContext::fail(const std::string& key, const std::string& what) const {
  throw UserError("config key '" + key_name(key) + "': " + what);
}

std::vector<int64_t> LossTermContext::resolve_layers(const std::string& key,
                                                     std::vector<int64_t> layers) const {
  for (auto& layer : layers) {
    const int64_t resolved = layer < 0 ? layer + n_layers : layer;
    if (resolved < 0 || resolved >= n_layers)
      fail(key, "layer " + std::to_string(layer) + " is out of range for a model with " +
                    std::to_string(n_layers) + " blocks (valid: 0.." +
                    std::to_string(n_layers - 1) + ", or negative from the end)");
    layer = resolved;
  }
  std::sort(layers.begin(), layers.end());
  layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
  if (layers.empty()) fail(key, "expected at least one layer");
  return layers;
}

namespace {

// The term's name, checked against the registry.
std::string term_name(const YAML::Node& term, const std::string& where) {
  check_user(term.IsMap(), "config key '" + where +
                               "': expected a map like {name: cross_entropy, " +
                               "weight: 1.0}, got '" + YAML::Dump(term) + "'");
  const YAML::Node name = term["name"];
  check_user(name.IsDefined() && !name.IsNull(),
             "missing config key '" + where +
                 ".name'; valid terms: " + join_names(loss_registry().names()));
  const std::string text = cfg::convert<std::string>(name, where + ".name");
  check_user(loss_registry().contains(text),
             "config key '" + where + ".name': unknown loss term '" + text + "'; valid terms: " +
                 join_names(loss_registry().names()) + did_you_mean(text, loss_registry().names()));
  return text;
}

}  // namespace

template <class ConfigTree>
std::unique_ptr<LossTerm> make_loss_term(const ConfigTree& term, const std::string& where,
                                         int64_t n_layers) {
  const std::string name = term_name(term, where);
  const LossTermSpec& spec = loss_registry().get(name);
  const config::BindScope scope{"loss term '" + name + "'", {"name", "weight"}};
  return spec.make(spec.options.bind(term, where, scope), LossTermContext{where, n_layers});
}

template <class ConfigTree>
LossSet::LossSet(const ConfigTree& config, int64_t n_layers) {
  check_user(n_layers > 0, "LossSet needs a model with at least one block");
  YAML::Node terms = cfg::require(config, "loss.terms");
  check_user(terms.IsSequence() && terms.size() > 0,
             "config key 'loss.terms': expected a non-empty list of {name: ..., weight: ...} "
             "maps; valid terms: " +
                 join_names(loss_registry().names()));
  taps_.logits = false;
  std::set<std::string> seen;
  for (size_t i = 0; i < terms.size(); ++i) {
    std::string where = "loss.terms[" + std::to_string(i) + "]";
    Entry entry;
    entry.term = make_loss_term(terms[i], where, n_layers);
    entry.name = terms[i]["name"].Scalar();
    const YAML::Node weight = terms[i]["weight"];
    entry.weight = weight.IsDefined() && !weight.IsNull()
                       ? cfg::convert<double>(weight, where + ".weight")
                       : 1.0;  // a term without a weight counts once
    entry.key = "loss/" + entry.name;
    if (!seen.insert(entry.name).second) entry.key += "_" + std::to_string(i);
    taps_.merge(entry.term->taps(n_layers));
    entries_.push_back(std::move(entry));
  }
}

LossResult LossSet::compute(const ModelOutput& output, const Batch& batch) const {
  LossResult result;
  for (const auto& entry : entries_) {
    torch::Tensor value = entry.term->compute(output, batch, result.terms);
    result.terms[entry.key] = value;
    torch::Tensor weighted = value * entry.weight;
    result.total = result.total.defined() ? result.total + weighted : weighted;
  }
  for (const auto& [name, value] : output.aux_losses) {
    result.terms["aux/" + name] = value;
    result.total = result.total.defined() ? result.total + value : value;
  }
  return result;
}

void LossSet::set_class_counts(const std::vector<int64_t>& counts) {
  for (auto& entry : entries_) entry.term->set_class_counts(counts);
}

template std::unique_ptr<LossTerm> make_loss_term(const YAML::Node&, const std::string&, int64_t);
template LossSet::LossSet(const YAML::Node&, int64_t);

}  // namespace attnlab
