// Moved config keys: the table, the user-facing refusal and the upgrade of saved configs; see
// moved_keys.h.
#include "config/moved_keys.h"

#include "common/error.h"
#include "config/yaml_io.h"
#include "config/yaml_tree.h"

namespace attnlab::config {

const std::vector<MovedKey>& moved_keys() {
  static const std::vector<MovedKey> table = {
      {"attention.mask", "model.mask"},
      {"attention.block_size", "model.block_size"},
      {"trainer.sample_tokens", "trainer.sample.max_new_tokens"},
      {"trainer.sample_prompt", "trainer.sample.prompt"},
      {"trainer.sample_temperature", "trainer.sample.temperature"},
      {"trainer.sample_top_k", "trainer.sample.top_k"},
  };
  return table;
}

const MovedKey* find_moved_key(const std::string& dotted_key) {
  for (const MovedKey& moved : moved_keys()) {
    if (dotted_key == moved.old_key || dotted_key.rfind(moved.old_key + ".", 0) == 0) return &moved;
  }
  return nullptr;
}

std::string moved_key_message(const MovedKey& moved, const std::string& value) {
  return "config key '" + moved.old_key + "' has moved to '" + moved.new_key + "' (write " +
         moved.new_key + "=" + (value.empty() ? "..." : value) + ")";
}

void reject_moved_keys(const YAML::Node& config) {
  for (const MovedKey& moved : moved_keys()) {
    const YAML::Node old_value = find_node(config, moved.old_key);
    if (!old_value.IsDefined()) continue;
    throw UserError(moved_key_message(moved, old_value.IsScalar() ? old_value.Scalar() : "") +
                    "; a config file sets it");
  }
}

YAML::Node upgrade_saved_config(const YAML::Node& saved) {
  YAML::Node config = YAML::Clone(saved);
  if (!config.IsMap()) return config;
  for (const MovedKey& moved : moved_keys()) {
    const YAML::Node old_value = find_node(config, moved.old_key);
    if (!old_value.IsDefined()) continue;
    const YAML::Node value = YAML::Clone(old_value);
    erase_node(config, moved.old_key);
    if (!find_node(config, moved.new_key).IsDefined()) set_node(config, moved.new_key, value);
  }
  return config;
}

YAML::Node load_saved_config(const std::string& path) {
  const YAML::Node content = load_config_file(path).content;
  // An empty (or truncated to nothing) config.yaml would fail later as "missing config key
  // 'tokenizer.name'", naming no file.
  check_user(content.IsMap() && content.size() > 0,
             "'" + path + "' is " +
                 (content.IsMap() || content.IsNull() ? "empty" : "not a mapping") +
                 "; it should hold the run's composed config (the run dir is damaged: restore "
                 "the file, or print one with `attnlab config` and the run's overrides)");
  return upgrade_saved_config(content);
}

YAML::Node parse_saved_config(const std::string& text, const std::string& origin) {
  return upgrade_saved_config(parse_yaml(text, origin));
}

}  // namespace attnlab::config
