// compose() / apply_overrides(): parse the overrides, split group choices from value overrides,
// build the defaults tree, apply the value overrides in command-line order, then resolve. Any
// yaml-cpp or filesystem exception that slips past the checks becomes a UserError here, so callers
// only ever see UserError for bad input.
#include <filesystem>

#include "common/error.h"
#include "config/composer.h"
#include "config/config.h"
#include "config/group_lists.h"
#include "config/moved_keys.h"
#include "config/override_apply.h"
#include "config/override_parser.h"
#include "config/search_path.h"
#include "config/yaml_tree.h"

namespace attnlab::config {
namespace {

template <typename F>
auto user_errors_only(const std::string& context, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const UserError&) {
    throw;
  } catch (const YAML::Exception& e) {
    throw UserError(context + ": " + e.what());
  } catch (const std::filesystem::filesystem_error& e) {
    throw UserError(context + ": " + e.what());
  }
}

}  // namespace

Composition compose_with_choices(const ComposeRequest& request) {
  return user_errors_only("config composition", [&] {
    std::vector<std::string> path = search_path(request.config_dir);
    auto groups = discover_groups(path);
    std::vector<Override> group_overrides, value_overrides;
    for (const auto& text : request.overrides) {
      Override o = parse_override(text);
      reject_sweep(o);
      bool is_group = groups.count(o.key.substr(0, o.key.find('@'))) > 0;  // group[@pkg]
      (is_group ? group_overrides : value_overrides).push_back(o);
    }
    auto primary = find_config_file(path, request.config_name);
    if (!primary) {
      std::string dirs;
      for (const auto& dir : path) dirs += (dirs.empty() ? "" : ", ") + dir;
      throw UserError("primary config '" + request.config_name + ".yaml' not found in: " + dirs +
                      " (set --config-dir or ATTNLAB_CONFIG_DIR)");
    }
    Composition result = compose_defaults_tree(path, groups, *primary, group_overrides);
    reject_moved_keys(result.config);  // an old key from the user's config files
    for (const auto& o : value_overrides) apply_key_override(result.config, o);
    for (const GroupList& list : group_lists())
      complete_group_list(result.config, list, path, groups);
    if (request.resolve) result.config = resolve_interpolations(result.config);
    return result;
  });
}

YAML::Node compose(const ComposeRequest& request) { return compose_with_choices(request).config; }

YAML::Node apply_overrides(const YAML::Node& base, const std::vector<std::string>& overrides,
                           bool resolve) {
  return user_errors_only("applying overrides", [&] {
    YAML::Node config = deep_copy(base);
    if (!config.IsDefined() || config.IsNull()) config = YAML::Node(YAML::NodeType::Map);
    check_user(config.IsMap(), "cannot apply overrides: the base config is not a mapping");
    for (const auto& text : overrides) apply_key_override(config, parse_override(text));
    return resolve ? resolve_interpolations(config) : config;
  });
}

YAML::Node apply_overrides_to_saved(const YAML::Node& saved,
                                    const std::vector<std::string>& overrides,
                                    const std::optional<std::string>& config_dir) {
  const std::map<std::string, std::vector<std::string>> groups =
      discover_groups(search_path(config_dir));
  std::vector<std::string> choices, rest;
  for (const std::string& text : overrides) {
    const Override o = parse_override(text);
    const bool group_choice = o.op == OverrideOp::kSet && o.has_value && !o.is_sweep() &&
                              o.key.find('.') == std::string::npos && groups.count(o.key) &&
                              o.value.IsScalar();
    (group_choice ? choices : rest).push_back(text);
  }
  YAML::Node config = deep_copy(saved);
  if (!choices.empty()) {
    ComposeRequest request;
    request.overrides = choices;
    request.config_dir = config_dir;
    request.resolve = false;
    const YAML::Node composed = compose(request);
    for (const std::string& text : choices) {
      const std::string group = parse_override(text).key;
      if (config.IsMap()) config[group] = deep_copy(composed[group]);
    }
  }
  return apply_overrides(config, rest);
}

}  // namespace attnlab::config
