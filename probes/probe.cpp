// Probe targets and the probe runner; see probe.h.
#include "probes/probe.h"

#include <yaml-cpp/yaml.h>

#include "common/config_access.h"
#include "config/run_options.h"
#include "modules/attention.h"
#include "modules/gpt.h"
#include "probes/loss_probe.h"
#include "probes/masked_diffusion_probe.h"

namespace attnlab {

namespace {

// The layer's options exactly as the GPT builds them (gpt.h), with the probe's dropout.
AttentionOptions attention_options_from(const YAML::Node& config, const ProbeOptions& probe,
                                        std::string* attention_name) {
  const GptOptions model = gpt_options_from_config(config, /*vocab_size=*/1);
  const int64_t layer_index = probe.layer_index();
  check_user(
      layer_index >= 0 && layer_index < model.n_layers,
      "probe.layer_index (" + std::to_string(layer_index) + ") must be in [0, model.n_layers)");
  AttentionOptions options = attention_options_for_layer(model, layer_index, attention_name);
  options.dropout = probe.dropout();
  return options;
}

}  // namespace

StateDict probe_attention(const YAML::Node& config) {
  torch::manual_seed(run_options(config).seed);
  const ProbeOptions probe = probe_options(config);
  std::string attention;
  AttentionOptions options = attention_options_from(config, probe, &attention);
  auto module = make_attention(attention, options);
  const auto dtype = probe_dtype(probe);
  module->to(dtype);
  module->train(probe.training());
  const int64_t batch = probe.batch();
  const int64_t length = probe.seq_len();
  check_user(batch > 0 && length > 0, "probe.batch and probe.seq_len must be positive");
  auto x = torch::randn({batch, length, options.d_model}, torch::TensorOptions().dtype(dtype))
               .requires_grad_(true);

  AttentionContext context;
  context.mask = options.mask;  // the model's (model.mask / model.block_size)
  context.positions = torch::arange(length);
  AttentionOutput out = module->forward(x, context);
  auto loss = out.y.sum();
  for (const auto& [name, value] : out.aux_losses) loss = loss + value;
  loss.backward();

  StateDict dump{{"x", x.detach()}, {"y", out.y.detach()}, {"grad.x", x.grad()}};
  for (const auto& p : module->named_parameters()) {
    dump["param." + p.key()] = p.value().detach();
    dump["grad.param." + p.key()] =
        p.value().grad().defined() ? p.value().grad() : torch::zeros_like(p.value());
  }
  for (const auto& [name, value] : out.aux_losses) dump["aux." + name] = value.detach();
  for (const auto& [name, value] : out.stats) dump["stat." + name] = value.detach();
  torch::NoGradGuard no_grad;
  context.need_probs = true;
  AttentionOutput with_probs = module->forward(x.detach(), context);
  if (with_probs.probs.defined()) dump["attn"] = with_probs.probs;
  return dump;
}

Registry<ProbeTarget>& probe_registry() {
  static Registry<ProbeTarget> registry("probe target",
                                        {{"attention", probe_attention},
                                         {"loss", probe_loss_from_config<YAML::Node>},
                                         {"masked_diffusion_loss", probe_masked_diffusion_loss}});
  return registry;
}

std::string run_probe(const YAML::Node& config) {
  const ProbeOptions probe = probe_options(config);
  StateDict dump = probe_registry().get(probe.target())(config);
  const std::string path = probe.out();
  save_weights_file(path, dump);
  return path;
}

}  // namespace attnlab
