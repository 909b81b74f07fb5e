// finetune=none | lora: binding the group, adding LoRA adapters to a model and merging them back
// into the base weights; see finetune.h.
#include "trainer/finetune.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "common/config_access.h"
#include "common/error.h"
#include "common/glob.h"
#include "config/options.h"
#include "config/run_options.h"

namespace attnlab {

namespace {

// The Linear layers whose forward goes through lora_linear() (modules/lora.h): the attention
// projections of mha, diff and the softplus modules, and the MLP's layers. Other Linears (moh's
// fused qkv, routers) would silently ignore an adapter, so they are refused.
const std::set<std::string>& adaptable_leaves() {
  static const std::set<std::string> leaves = {"q_proj", "k_proj", "v_proj", "out_proj", "w_gate",
                                               "w_up",   "w_down", "fc_in",  "fc_out"};
  return leaves;
}

std::string leaf_of(const std::string& name) { return name.substr(name.rfind('.') + 1); }

bool matches_target(const std::string& pattern, const std::string& name) {
  return glob_match(pattern, name) || glob_match("*." + pattern, name);
}

// 1234567 -> "1,234,567".
std::string with_commas(int64_t value) {
  std::string digits = std::to_string(value), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + items[i];
  return out;
}

}  // namespace

template <class ConfigTree>
std::optional<LoraOptions> lora_options(const ConfigTree& config) {
  if (!cfg::has(config, "finetune")) return std::nullopt;
  const YAML::Node group = cfg::find(config, "finetune");
  const std::string name = cfg::get_or<std::string>(config, "finetune.name", "none");
  if (name == "none") {
    config::bind<NoFinetuneOptions>(group, "finetune", {"finetune 'none'", {"name"}});
    return std::nullopt;
  }
  check_user(name == "lora",
             "finetune.name: unknown fine-tuning method '" + name + "'; expected none or lora");
  return config::bind<LoraOptions>(group, "finetune", {"finetune 'lora'", {"name"}});
}

template std::optional<LoraOptions> lora_options(const YAML::Node&);

std::string apply_finetune(const YAML::Node& config, torch::nn::Module& model) {
  const std::optional<LoraOptions> lora = lora_options(config);
  if (!lora) return "";
  // The Linear layers of the blocks (never the output head, embeddings or a classifier).
  std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>> linears;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    const std::string& name = item.key();
    if (name.rfind("blocks.", 0) != 0 || !item.value()->as<torch::nn::LinearImpl>()) continue;
    linears.emplace_back(name, item.value());
  }
  const bool all_linear =
      std::find(lora->target().begin(), lora->target().end(), "all-linear") != lora->target().end();
  std::vector<std::shared_ptr<torch::nn::Module>> chosen;
  std::vector<std::string> leaves;
  for (const auto& [name, module] : linears) {
    bool hit = all_linear;
    for (const auto& pattern : lora->target()) hit = hit || matches_target(pattern, name);
    if (!hit) continue;
    check_user(adaptable_leaves().count(leaf_of(name)) > 0,
               "finetune.target: " + name +
                   " cannot carry a LoRA adapter yet (its module does not route the Linear "
                   "through modules/lora.h); adaptable layers: " +
                   join({adaptable_leaves().begin(), adaptable_leaves().end()}));
    chosen.push_back(module);
    if (std::find(leaves.begin(), leaves.end(), leaf_of(name)) == leaves.end())
      leaves.push_back(leaf_of(name));
  }
  for (const auto& pattern : lora->target()) {
    if (pattern == "all-linear") continue;
    bool used = false;
    for (const auto& item : linears) used = used || matches_target(pattern, item.first);
    std::vector<std::string> known;
    for (const auto& item : linears)
      if (std::find(known.begin(), known.end(), leaf_of(item.first)) == known.end())
        known.push_back(leaf_of(item.first));
    check_user(used, "finetune.target: '" + pattern +
                         "' matches no Linear layer of the model's blocks; its Linear layers: " +
                         join(known) + " (or all-linear)");
  }
  check_user(!chosen.empty(), "finetune.target: the model's blocks have no Linear layer to adapt");

  // A generator of its own, seeded from the run's seed: the adapters are the same on every rank
  // and every resume, and the global RNG (dropout, sampling) is left where it was.
  at::Generator generator = at::detail::createCPUGenerator(
      static_cast<uint64_t>(run_options(config).seed) ^ 0x4c6f5241ull);
  for (auto& module : chosen)
    attach_lora(*module->as<torch::nn::LinearImpl>(), lora->adapter(), generator);

  // Everything else is frozen, but for modules_to_save.
  std::vector<std::string> names;
  for (const auto& item : model.named_parameters()) names.push_back(item.key());
  for (const auto& pattern : lora->modules_to_save())
    check_user(!glob_filter(pattern, names).empty(),
               "finetune.modules_to_save: '" + pattern + "' matches no parameter of the model");
  int64_t trainable = 0, total = 0;
  for (auto& item : model.named_parameters()) {
    const std::string& name = item.key();
    bool train =
        name.find(".lora_A.") != std::string::npos || name.find(".lora_B.") != std::string::npos;
    for (const auto& pattern : lora->modules_to_save()) train = train || glob_match(pattern, name);
    item.value().set_requires_grad(train);
    total += item.value().numel();
    if (train) trainable += item.value().numel();
  }
  char share[32];
  std::snprintf(share, sizeof(share), "%.2f%%", 100.0 * trainable / std::max<int64_t>(total, 1));
  char alpha[32];
  std::snprintf(alpha, sizeof(alpha), "%g", lora->alpha());
  return "lora: r=" + std::to_string(lora->r()) + " alpha=" + alpha +
         (lora->use_rslora() ? " (rslora)" : "") + " on " + std::to_string(chosen.size()) +
         " modules (" + join(leaves) + "), trainable " + with_commas(trainable) + " of " +
         with_commas(total) + " parameters (" + share + ")";
}

}  // namespace attnlab
