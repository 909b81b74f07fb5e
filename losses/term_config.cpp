// Implementation of TermConfig (losses/term_config.h).
#include "losses/term_config.h"

#include <algorithm>

namespace attnlab {

TermConfig::TermConfig(YAML::Node node, std::string where) : where_(std::move(where)) {
  node_.reset(node);
}

bool TermConfig::has(const std::string& key) const {
  if (!node_.IsMap()) return false;
  YAML::Node value = node_[key];
  return value.IsDefined() && !value.IsNull();
}

void TermConfig::fail(const std::string& key, const std::string& what) const {
  throw UserError("config key '" + key_name(key) + "': " + what);
}

std::string TermConfig::choice_or(const std::string& key, const std::vector<std::string>& choices,
                                  const std::string& fallback) const {
  std::string value = get_or<std::string>(key, fallback);
  if (std::find(choices.begin(), choices.end(), value) == choices.end())
    fail(key, "expected one of " + join_names(choices) + ", got '" + value + "'");
  return value;
}

std::vector<int64_t> TermConfig::layers_or(const std::string& key, int64_t n_layers,
                                           const std::vector<int64_t>& fallback) const {
  if (!has(key)) return fallback;
  std::vector<int64_t> layers = get<std::vector<int64_t>>(key);
  for (auto& layer : layers) {
    int64_t resolved = layer < 0 ? layer + n_layers : layer;
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

void TermConfig::check_keys(const std::vector<std::string>& allowed) const {
  check_user(node_.IsMap(), "config key '" + where_ + "': expected a map like {name: ..., " +
                                "weight: ...}, got '" + YAML::Dump(node_) + "'");
  for (const auto& entry : node_) {
    std::string key = entry.first.as<std::string>();
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end())
      throw UserError("unknown config key '" + key_name(key) +
                      "'; valid keys: " + join_names(allowed));
  }
}

}  // namespace attnlab
