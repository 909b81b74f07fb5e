// TermConfig: checked reads of one loss term's config map (an entry of `loss.terms`). Every
// failure is a UserError naming the full key, e.g. "loss.terms[1].gamma: expected float, got
// 'abc'", and unknown keys are rejected with the list of valid ones, so a typo never silently
// falls back to a default.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/config_access.h"
#include "common/error.h"
#include "common/suggestions.h"

namespace attnlab {

class TermConfig {
 public:
  // `where`: how the map is named in messages ("loss.terms[2]").
  TermConfig(YAML::Node node, std::string where);

  const std::string& where() const { return where_; }
  const YAML::Node& node() const { return node_; }
  // "loss.terms[2].gamma"
  std::string key_name(const std::string& key) const { return where_ + "." + key; }
  bool has(const std::string& key) const;

  template <typename T>
  T get_or(const std::string& key, const T& fallback) const {
    if (!has(key)) return fallback;
    return cfg::convert<T>(node_[key], key_name(key));
  }
  template <typename T>
  T get(const std::string& key) const {
    check_user(has(key), "missing config key '" + key_name(key) + "'");
    return cfg::convert<T>(node_[key], key_name(key));
  }
  // A string restricted to `choices`; UserError lists them otherwise.
  std::string choice_or(const std::string& key, const std::vector<std::string>& choices,
                        const std::string& fallback) const;
  // Throws a UserError naming `key` with `what` as the reason.
  [[noreturn]] void fail(const std::string& key, const std::string& what) const;

  // Block indices from `key` (Python-style negatives allowed: -1 = last block), each checked to
  // lie in [0, n_layers); `fallback` when the key is absent.
  std::vector<int64_t> layers_or(const std::string& key, int64_t n_layers,
                                 const std::vector<int64_t>& fallback) const;

  // Rejects keys not in `allowed` (the message lists the allowed keys).
  void check_keys(const std::vector<std::string>& allowed) const;

 private:
  YAML::Node node_;
  std::string where_;
};

}  // namespace attnlab
