// Implementation of the loss probe (losses/loss_probe.h).
#include "losses/loss_probe.h"

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

std::map<std::string, torch::Tensor> probe_loss_term(const std::string& name,
                                                     const YAML::Node& term,
                                                     const LossProbeInputs& inputs,
                                                     int64_t n_layers) {
  YAML::Node entry = YAML::Clone(term);
  if (!entry.IsMap()) entry = YAML::Node(YAML::NodeType::Map);
  entry["name"] = name;
  YAML::Node config;
  config["loss"]["terms"].push_back(entry);
  return run_probe(LossSet(config, n_layers), inputs);
}

std::map<std::string, torch::Tensor> probe_loss_set(const YAML::Node& config,
                                                    const LossProbeInputs& inputs,
                                                    int64_t n_layers) {
  return run_probe(LossSet(config, n_layers), inputs);
}

}  // namespace attnlab
