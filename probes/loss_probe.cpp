// Implementation of the loss probe (probes/loss_probe.h).
#include "probes/loss_probe.h"

#include <yaml-cpp/yaml.h>

#include "common/config_access.h"
#include "config/options.h"
#include "config/run_options.h"
#include "losses/loss_set.h"

namespace attnlab {

LossProbeInputs synthetic_loss_inputs(const LossProbeShape& s, uint64_t seed) {
  torch::Generator gen = at::detail::createCPUGenerator(seed);
  auto opts = torch::TensorOptions().dtype(s.dtype);
  LossProbeInputs in;
  if (s.classification) {
    in.logits = at::randn({s.batch, s.vocab}, gen, opts) * 2.0;
    in.targets = at::randint(s.vocab, {s.batch}, gen, torch::kLong);
  } else {
    in.logits = at::randn({s.batch, s.seq_len, s.vocab}, gen, opts) * 2.0;
    in.targets = at::randint(s.vocab, {s.batch, s.seq_len}, gen, torch::kLong);
  }
  in.input = at::randint(s.vocab, {s.batch, s.seq_len}, gen, torch::kLong);
  auto causal = torch::ones({s.seq_len, s.seq_len}, torch::kBool).tril();
  for (int64_t l = 0; l < s.n_layers; ++l) {
    in.hidden[l] = at::randn({s.batch, s.seq_len, s.d_model}, gen, opts);
    auto scores = at::randn({s.batch, s.n_heads, s.seq_len, s.seq_len}, gen, opts) * 2.0;
    in.attn[l] = torch::softmax(scores.masked_fill(causal.logical_not(), -INFINITY), -1);
  }
  return in;
}

namespace {

std::map<std::string, torch::Tensor> run_probe(const LossSet& losses,
                                               const LossProbeInputs& inputs) {
  ModelOutput output;
  Batch batch;
  std::vector<std::pair<std::string, torch::Tensor>> leaves;
  if (inputs.logits.defined()) {
    output.logits = inputs.logits.detach().clone().requires_grad_(true);
    leaves.emplace_back("logits", output.logits);
  }
  for (const auto& [layer, h] : inputs.hidden) {
    output.hidden[layer] = h.detach().clone().requires_grad_(true);
    leaves.emplace_back("hidden." + std::to_string(layer), output.hidden[layer]);
  }
  for (const auto& [layer, a] : inputs.attn) {
    output.probs[layer] = a.detach().clone().requires_grad_(true);
    leaves.emplace_back("attn." + std::to_string(layer), output.probs[layer]);
  }
  if (inputs.targets.defined()) {
    if (inputs.logits.defined() && inputs.logits.dim() == 2)
      batch.labels = inputs.targets;
    else
      batch.target = inputs.targets;
  }
  batch.input = inputs.input;
  batch.loss_mask = inputs.loss_mask;

  LossResult result = losses.compute(output, batch);
  std::vector<torch::Tensor> leaf_tensors;
  for (const auto& leaf : leaves) leaf_tensors.push_back(leaf.second);
  auto grads = torch::autograd::grad({result.total}, leaf_tensors, {}, false, false, true);

  std::map<std::string, torch::Tensor> out;
  for (size_t i = 0; i < leaves.size(); ++i) {
    out[leaves[i].first] = leaves[i].second.detach();
    out["grad." + leaves[i].first] =
        grads[i].defined() ? grads[i] : torch::zeros_like(leaves[i].second).detach();
  }
  if (inputs.targets.defined()) out["targets"] = inputs.targets;
  if (inputs.input.defined()) out["input"] = inputs.input;
  out["loss"] = result.total.detach();
  for (const auto& [key, value] : result.terms) out[key] = value.detach();
  return out;
}

}  // namespace

template <class ConfigTree>
std::map<std::string, torch::Tensor> probe_loss_term(const std::string& name,
                                                     const ConfigTree& term,
                                                     const LossProbeInputs& inputs,
                                                     int64_t n_layers) {
  YAML::Node entry = YAML::Clone(term);
  if (!entry.IsMap()) entry = YAML::Node(YAML::NodeType::Map);
  entry["name"] = name;
  YAML::Node config;
  config["loss"]["terms"].push_back(entry);
  return run_probe(LossSet(config, n_layers), inputs);
}

template <class ConfigTree>
std::map<std::string, torch::Tensor> probe_loss_set(const ConfigTree& config,
                                                    const LossProbeInputs& inputs,
                                                    int64_t n_layers) {
  LossSet losses(config, n_layers);
  if (inputs.logits.defined() && inputs.targets.defined()) {
    const int64_t classes = inputs.logits.size(-1);
    torch::Tensor t = inputs.targets.reshape({-1}).to(torch::kLong);
    t = t.masked_select((t >= 0).logical_and(t < classes));
    torch::Tensor counts = torch::bincount(t, {}, classes).contiguous();
    losses.set_class_counts(
        std::vector<int64_t>(counts.data_ptr<int64_t>(), counts.data_ptr<int64_t>() + classes));
  }
  return run_probe(losses, inputs);
}

template <class ConfigTree>
ProbeOptions probe_options(const ConfigTree& config) {
  return config::bind<ProbeOptions>(cfg::find(config, "probe"), "probe");
}

template <class ConfigTree>
std::map<std::string, torch::Tensor> probe_loss_from_config(const ConfigTree& config) {
  const ProbeOptions probe = probe_options(config);
  LossProbeShape shape;
  shape.batch = probe.batch();
  shape.seq_len = probe.seq_len();
  shape.vocab = probe.loss_vocab();
  shape.classification = probe.loss_classification();
  shape.d_model = cfg::get<int64_t>(config, "model.d_model");
  shape.n_heads = cfg::get<int64_t>(config, "model.n_heads");
  shape.n_layers = cfg::get<int64_t>(config, "model.n_layers");
  check_user(shape.batch > 0 && shape.seq_len > 1,
             "probe.batch must be > 0 and probe.seq_len > 1 (BOS + at least one token)");
  check_user(shape.vocab >= 2, "config key 'probe.loss_vocab': expected >= 2 classes, got " +
                                   std::to_string(shape.vocab));
  check_user(shape.d_model > 0 && shape.n_heads > 0 && shape.n_layers > 0,
             "model.d_model, model.n_heads and model.n_layers must be positive");
  shape.dtype = probe_dtype(probe);
  const auto seed = static_cast<uint64_t>(run_options(config).seed);
  return probe_loss_set(config, synthetic_loss_inputs(shape, seed), shape.n_layers);
}

torch::ScalarType probe_dtype(const ProbeOptions& options) {
  return options.dtype() == "float64" ? torch::kDouble : torch::kFloat;
}

template ProbeOptions probe_options(const YAML::Node&);
template std::map<std::string, torch::Tensor> probe_loss_term(const std::string&, const YAML::Node&,
                                                              const LossProbeInputs&, int64_t);
template std::map<std::string, torch::Tensor> probe_loss_set(const YAML::Node&,
                                                             const LossProbeInputs&, int64_t);
template std::map<std::string, torch::Tensor> probe_loss_from_config(const YAML::Node&);

}  // namespace attnlab
