// See config_agreement.h.
#include "distributed/config_agreement.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/error.h"
#include "config/yaml_io.h"
#include "config/yaml_tree.h"

namespace attnlab {

void check_ranks_agree_on_config(DistributedContext& dist, const YAML::Node& config) {
  if (!dist.is_distributed()) return;
  YAML::Node mine = config::deep_copy(config);
  config::erase_node(mine, "run.dir");
  config::erase_node(mine, "run.sweep_dir");
  const std::string text = config::to_yaml(mine);
  const std::string reference_text = dist.broadcast_string(text);
  if (text == reference_text) {
    dist.barrier();
    return;
  }
  const YAML::Node reference = config::parse_yaml(reference_text, "rank 0's config");
  auto leaf = [](const YAML::Node& root, const std::string& key) -> std::string {
    YAML::Node node = config::find_node(root, key);
    if (!node.IsDefined()) return "(absent)";
    if (node.IsMap()) return "";
    YAML::Emitter out;
    out << YAML::Flow << node;
    return out.c_str();
  };
  std::vector<std::string> keys = config::all_keys(reference);
  for (const auto& key : config::all_keys(mine))
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
  std::string differences;
  int shown = 0;
  for (const auto& key : keys) {
    const std::string theirs = leaf(reference, key), ours = leaf(mine, key);
    if (theirs == ours) continue;
    if (++shown <= 8)
      differences += (differences.empty() ? "" : ", ") + key + " (rank 0: " + theirs + ", rank " +
                     std::to_string(dist.rank()) + ": " + ours + ")";
  }
  if (shown > 8) differences += ", and " + std::to_string(shown - 8) + " more";
  throw UserError("rank " + std::to_string(dist.rank()) +
                  "'s config differs from rank 0's; every rank must get the same overrides: " +
                  (differences.empty() ? std::string("(formatting only)") : differences));
}

}  // namespace attnlab
