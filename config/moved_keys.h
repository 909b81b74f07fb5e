// Config keys that moved, and the one place that knows them. A user who gives an old key (a
// command-line override, or a config file that sets it) gets one line naming the new key; a
// config that attnlab itself wrote before the move (a run directory's config.yaml, the config
// record inside a checkpoint, an imported folder's config.yaml) is read back through
// load_saved_config / parse_saved_config, which move the old keys to their new place, so
// resume, eval, sample and export keep working on old runs.
//
// Moved so far:
//   attention.mask       -> model.mask        the mask and block size belong to the model, not
//   attention.block_size -> model.block_size  to one module
//   trainer.sample_tokens, sample_prompt, sample_temperature, sample_top_k
//     -> trainer.sample.max_new_tokens, prompt, temperature, top_k: the final sample takes the
//        names of `attnlab sample`'s options
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

namespace attnlab::config {

struct MovedKey {
  std::string old_key;  // dotted, e.g. attention.mask
  std::string new_key;  // dotted, e.g. model.mask
};

const std::vector<MovedKey>& moved_keys();

// The entry whose old key is `dotted_key` or a parent of it, or nullptr.
const MovedKey* find_moved_key(const std::string& dotted_key);

// The one-line message for an old key given by the user: "'attention.mask' has moved to
// 'model.mask' ...", with the value as it should now be written when `value` is not empty.
std::string moved_key_message(const MovedKey& moved, const std::string& value = "");

// UserError (moved_key_message) when `config` holds an old key; for composed configs, where the
// old key can only come from the user's config files.
void reject_moved_keys(const YAML::Node& config);

// A config written before a move, with every old key moved to its new key (a new key already
// present wins and the old one is dropped). Changes nothing in a current config. Returns a copy.
YAML::Node upgrade_saved_config(const YAML::Node& saved);

// Readers of saved configs: load_config_file / parse_yaml (yaml_io.h), then upgrade_saved_config.
// load_saved_config: a file that is empty or not a mapping is a UserError naming it.
YAML::Node load_saved_config(const std::string& path);
YAML::Node parse_saved_config(const std::string& text, const std::string& origin);

}  // namespace attnlab::config
