// Implementation of LossSet (losses/loss_set.h) and make_loss_term.
#include "losses/loss_set.h"

#include <set>

#include "common/config_access.h"

namespace attnlab {

std::unique_ptr<LossTerm> make_loss_term(const YAML::Node& term, const std::string& where,
                                         int64_t n_layers) {
  TermConfig config(term, where);
  check_user(term.IsMap(),
             "config key '" + where + "': expected a map like {name: cross_entropy, weight: 1.0}");
  check_user(config.has("name"), "missing config key '" + config.key_name("name") +
                                     "'; valid terms: " + join_names(loss_registry().names()));
  std::string name = config.get<std::string>("name");
  if (!loss_registry().contains(name))
    throw UserError("config key '" + config.key_name("name") + "': unknown loss term '" + name +
                    "'; valid terms: " + join_names(loss_registry().names()));
  const LossTermSpec& spec = loss_registry().get(name);
  std::vector<std::string> allowed = {"name", "weight"};
  allowed.insert(allowed.end(), spec.keys.begin(), spec.keys.end());
  config.check_keys(allowed);
  return spec.make(config, n_layers);
}

LossSet::LossSet(const YAML::Node& config, int64_t n_layers) {
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
    TermConfig term_config(terms[i], where);
    entry.name = term_config.get<std::string>("name");
    entry.weight = term_config.get_or<double>("weight", 1.0);
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

}  // namespace attnlab
