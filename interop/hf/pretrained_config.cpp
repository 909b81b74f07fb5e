// Pretrained architecture settings; see pretrained_config.h.
#include "interop/hf/pretrained_config.h"

#include <yaml-cpp/yaml.h>

#include <filesystem>

#include "common/config_access.h"
#include "common/error.h"
#include "config/run_options.h"
#include "interop/hf/hf_model.h"

namespace attnlab {
namespace fs = std::filesystem;

bool is_import_folder(const std::string& path) {
  return fs::is_regular_file(fs::path(path) / kPretrainedSettingsFile) &&
         fs::is_regular_file(fs::path(path) / "config.yaml");
}

std::vector<std::pair<std::string, std::string>> pretrained_settings(const std::string& init_from) {
  const std::string hf_folder = hf_source_folder(init_from);
  if (!hf_folder.empty() || init_from == "hf:") return read_hf_architecture(hf_folder).settings;
  std::error_code error;
  const fs::path file = fs::path(init_from) / kPretrainedSettingsFile;
  if (init_from.empty() || !fs::is_regular_file(file, error)) return {};
  YAML::Node root;
  try {
    root = YAML::LoadFile(file.string());
  } catch (const YAML::Exception& e) {
    throw UserError("'" + file.string() + "': malformed YAML (" + e.msg + ")");
  }
  const YAML::Node list = root["overrides"];
  check_user(list.IsSequence(), "'" + file.string() + "': expected overrides: [key=value, ...]");
  std::vector<std::pair<std::string, std::string>> settings;
  for (const auto& item : list) {
    const std::string text = item.IsScalar() ? item.Scalar() : "";
    const size_t eq = text.find('=');
    check_user(eq != std::string::npos && eq > 0,
               "'" + file.string() + "': expected key=value entries, got '" + text + "'");
    settings.emplace_back(text.substr(0, eq), text.substr(eq + 1));
  }
  return settings;
}

namespace {

// The model's vocabulary size among pretrained settings (0 when not recorded).
int64_t pretrained_vocab(const std::vector<std::pair<std::string, std::string>>& settings) {
  for (const auto& [key, value] : settings) {
    if (key != "model.vocab_size") continue;
    try {
      return std::stoll(value);
    } catch (const std::exception&) {
      return 0;
    }
  }
  return 0;
}

// A pretrained folder without a tokenizer, and no tokenizer chosen on the command line: the
// default byte tokenizer would train GPT-2's 50257-row embedding on byte ids, a silently wrong
// run. Stops with the tokenizer= choices whose ids fit the model's vocabulary.
[[noreturn]] void require_tokenizer_choice(const std::string& init_from, int64_t vocab) {
  std::string choices;
  if (vocab >= 50257 && vocab <= 50259) choices += "tokenizer=gpt2 (GPT-2's 50257 ids), ";
  if (vocab >= 256 && vocab <= 512)
    choices += "tokenizer=byte (256 bytes + 4 special ids, for a byte-level model), ";
  choices += "or tokenizer=hf tokenizer.path=<the model's tokenizer.json>";
  throw UserError(
      "init_from=" + init_from + " has no tokenizer.json, and a model with " +
      (vocab > 0 ? std::to_string(vocab) + " vocabulary rows" : "a vocabulary") +
      " needs the tokenizer it was trained with; choose it on the command line: " + choices);
}

}  // namespace

YAML::Node compose_with_pretrained(const config::ComposeRequest& request) {
  YAML::Node config = config::compose(request);
  const std::string init_from = run_options(config).init_from.value_or("");
  const auto settings = pretrained_settings(init_from);
  if (settings.empty()) return config;
  std::vector<std::string> user_keys;
  for (const auto& override_text : request.overrides) {
    std::string key = override_text.substr(0, override_text.find('='));
    key.erase(0, key.find_first_not_of("+~"));
    user_keys.push_back(key);
  }
  auto user_sets = [&](const std::string& key) {
    for (const auto& user : user_keys) {
      if (user == key) return true;
      const bool tokenizer = key.rfind("tokenizer", 0) == 0;
      if (tokenizer && user.rfind("tokenizer", 0) == 0) return true;
    }
    return false;
  };
  bool folder_tokenizer = false;
  for (const auto& setting : settings)
    if (setting.first.rfind("tokenizer", 0) == 0) folder_tokenizer = true;
  if (!folder_tokenizer && !user_sets("tokenizer"))
    require_tokenizer_choice(init_from, pretrained_vocab(settings));
  config::ComposeRequest again = request;
  again.overrides.clear();
  for (const auto& [key, value] : settings)
    if (!user_sets(key)) again.overrides.push_back(key + "=" + value);
  again.overrides.insert(again.overrides.end(), request.overrides.begin(), request.overrides.end());
  return config::compose(again);
}

int64_t grow_vocabulary_rows(StateDict& weights, const StateDict& model_state) {
  int64_t added = 0;
  for (const char* name : {"embed.weight", "lm_head.weight"}) {
    auto source = weights.find(name);
    auto target = model_state.find(name);
    if (source == weights.end() || target == model_state.end()) continue;
    const torch::Tensor& w = source->second;
    const torch::Tensor& t = target->second;
    if (w.dim() != 2 || t.dim() != 2 || w.size(1) != t.size(1) || w.size(0) >= t.size(0)) continue;
    const int64_t extra = t.size(0) - w.size(0);
    torch::Tensor mean = w.to(torch::kFloat64).mean(0, /*keepdim=*/true).to(w.scalar_type());
    source->second = torch::cat({w, mean.expand({extra, w.size(1)})}, 0);
    added = std::max(added, extra);
  }
  return added;
}

}  // namespace attnlab
