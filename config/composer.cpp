// Implementation of composer.h. Like Hydra, each defaults list is walked from its LAST entry to
// its first, recursing into each chosen option before moving on, so `override` entries in a later
// config (typically an experiment) are known before the groups they override are chosen. The
// chosen configs are then merged first-to-last, each at its package, with `_self_` marking where
// the config's own keys go (at the end when absent).
#include "config/composer.h"

#include <algorithm>
#include <set>

#include "common/error.h"
#include "common/suggestions.h"
#include "config/defaults_list.h"
#include "config/input_limits.h"
#include "config/yaml_io.h"
#include "config/yaml_tree.h"

namespace attnlab::config {
namespace {

constexpr int kMaxNesting = 32;

struct Item {
  YAML::Node content;
  std::string package;  // dotted; "" = top level
  std::string path;     // the file it came from, for errors
  bool strict = false;  // an experiment file: it may only set keys the config already has
};

// Struct mode for experiment files (Hydra's): every key `src` sets must exist in `dst`, the config
// composed so far, unless the existing value is an empty mapping (a free-form dict such as
// lr_multipliers: {}) or not a mapping at all (replaced whole). A misspelt key would otherwise be
// merged as a new key that nothing reads.
void check_known_keys(const YAML::Node& dst, const YAML::Node& src, const std::string& prefix,
                      const std::string& path) {
  if (!src.IsMap() || !dst.IsDefined() || !dst.IsMap() || dst.size() == 0) return;
  std::vector<std::string> known;
  for (auto it = dst.begin(); it != dst.end(); ++it) known.push_back(it->first.Scalar());
  for (auto it = src.begin(); it != src.end(); ++it) {
    const std::string key = it->first.Scalar();
    const std::string dotted = prefix.empty() ? key : prefix + "." + key;
    const YAML::Node existing = dst[key];
    check_user(existing.IsDefined(),
               path + ": key '" + dotted + "' is not in the config" + did_you_mean(key, known) +
                   "; an experiment can only change existing keys (add a new one with "
                   "+" +
                   dotted + "=... on the command line)");
    const YAML::Node value = it->second;
    check_known_keys(existing, value, dotted, path);
  }
}

// A group choice that can replace a defaults entry's option, and whether it was used.
struct ChoiceOverride {
  std::optional<std::string> option;
  std::string where;
  bool used = false;
  std::string text;  // the command-line override, when it came from there
};

std::string dotted(const std::string& group) {
  std::string out = group;
  std::replace(out.begin(), out.end(), '/', '.');
  return out;
}

std::string option_text(const std::optional<std::string>& option) {
  return option ? *option : "null";
}

class DefaultsComposer {
 public:
  DefaultsComposer(const std::vector<std::string>& path,
                   const std::map<std::string, std::vector<std::string>>& groups,
                   const std::vector<Override>& overrides)
      : path_(path), groups_(groups) {
    for (const auto& o : overrides) {
      std::optional<std::string> option;
      if (o.has_value && !o.value.IsNull()) {
        check_user(o.value.IsScalar(), "cannot apply '" + o.text +
                                           "': the option of config group '" + o.key +
                                           "' must be a name or null");
        option = o.value.Scalar();
        check_option_name(*option, o);
      }
      if (o.op == OverrideOp::kSet) {
        cli_set_[o.key] = {option, "command line '" + o.text + "'", false, o.text};
      } else if (o.op == OverrideOp::kDelete) {
        cli_remove_[o.key] = {o.has_value ? option : std::nullopt, "command line '" + o.text + "'",
                              false, o.text};
        if (o.has_value) remove_must_match_.insert(o.key);
      } else {
        appends_.push_back(o);
      }
    }
  }

  // Group options name files of the group's folder; a path (experiment=../../x) is refused
  // before any file is looked up.
  void check_option_name(const std::string& option, const Override& o) const {
    if (valid_option_name(option)) return;
    auto it = groups_.find(o.key.substr(0, o.key.find('@')));
    std::vector<std::string> options =
        it == groups_.end() ? std::vector<std::string>{} : it->second;
    throw UserError("cannot apply '" + preview(o.text) + "': '" + preview(option) +
                    "' is not an option name of config group '" + o.key +
                    "' (options are names of files in the group's folder, not paths); "
                    "available: " +
                    (options.empty() ? "none" : join_names(options, 100)));
  }

  Composition run(const std::string& primary_file) {
    std::vector<Item> items = process(primary_file, "", "", std::nullopt, true, 0);
    check_all_used(cli_set_, true);
    check_all_used(cli_remove_, false);
    for (const auto& [group, choice] : config_overrides_)
      check_user(choice.used, choice.where + ": 'override " + group +
                                  "' matches no config group in the defaults list");
    Composition result;
    result.config = YAML::Node(YAML::NodeType::Map);
    for (const auto& item : items) {
      if (item.strict) {  // its own message names the file and the key
        // Walked with const access and reset() (yaml-cpp's operator= would write into the tree).
        YAML::Node at;
        at.reset(result.config);
        for (const auto& part : key_parts(item.package)) {
          const YAML::Node& parent = at;
          const YAML::Node child =
              parent.IsDefined() && parent.IsMap() ? parent[part] : YAML::Node();
          // A missing key gives an invalid ("zombie") node, which throws on most calls.
          if (child.IsDefined())
            at.reset(child);
          else
            at.reset(YAML::Node());
        }
        check_known_keys(at, item.content, item.package, item.path);
      }
      try {
        YAML::Node target =
            item.package.empty() ? result.config : ensure_map(result.config, item.package);
        merge_into(target, item.content);
      } catch (const UserError& e) {
        throw UserError(item.path + ": cannot merge it at package '" + item.package +
                        "': " + e.what());
      }
    }
    result.choices = choices_;
    return result;
  }

 private:
  // Command-line group overrides must each have matched a group of the defaults tree.
  static void check_all_used(const std::map<std::string, ChoiceOverride>& table, bool hint) {
    for (const auto& [group, choice] : table) {
      if (choice.used) continue;
      std::string message = "cannot apply '" + choice.text + "': config group '" + group +
                            "' is not in the defaults list";
      if (hint) message += "; append it with +" + group + "=" + option_text(choice.option);
      throw UserError(message);
    }
  }

  // Group path of a defaults entry: "/x" is absolute, otherwise relative to the config's folder.
  static std::string absolute_group(const std::string& group, const std::string& folder) {
    if (!group.empty() && group[0] == '/') return group.substr(1);
    return folder.empty() ? group : folder + "/" + group;
  }

  std::string package_for(const ConfigFile& file, const std::string& default_package,
                          const std::optional<std::string>& forced) const {
    std::optional<std::string> package = forced ? forced : file.package;
    if (!package || *package == "_group_") return default_package;
    if (*package == "_global_") return "";
    if (package->rfind("_global_.", 0) == 0) return package->substr(9);
    return *package;
  }

  std::string find_or_fail(const std::string& group, const std::string& option,
                           const std::string& where) const {
    if (auto file = find_config_file(path_, group + "/" + option)) return *file;
    auto it = groups_.find(group);
    std::vector<std::string> options =
        it == groups_.end() ? std::vector<std::string>{} : it->second;
    throw UserError("unknown option '" + option + "' for config group '" + group + "' (" + where +
                    "); available: " + (options.empty() ? "none" : join_names(options, 100)) +
                    did_you_mean(option, options));
  }

  // Turns the command line's +group=option entries into appended defaults entries of the primary
  // config, or into choices when the primary config already lists the group as null.
  void add_appends(std::vector<DefaultsEntry>& entries) {
    for (const auto& o : appends_) {
      std::optional<std::string> option;
      if (o.has_value && !o.value.IsNull()) option = o.value.Scalar();
      auto listed = std::find_if(entries.begin(), entries.end(), [&](const DefaultsEntry& e) {
        return e.kind == DefaultsEntry::Kind::kGroup && !e.is_override &&
               absolute_group(e.group, "") + (e.package ? "@" + *e.package : "") == o.key;
      });
      if (listed != entries.end()) {
        check_user(o.op == OverrideOp::kForceAdd || !listed->option,
                   "cannot apply '" + o.text + "': config group '" + o.key +
                       "' is already in the defaults list (as " + o.key + ": " +
                       option_text(listed->option) + "); use " + o.key + "=" + option_text(option) +
                       " to change it");
        cli_set_[o.key] = {option, "command line '" + o.text + "'", false, o.text};
        continue;
      }
      DefaultsEntry entry;
      size_t at = o.key.find('@');
      entry.group = "/" + o.key.substr(0, at);
      if (at != std::string::npos) entry.package = o.key.substr(at + 1);
      entry.option = option;
      entry.where = "command line '" + o.text + "'";
      entries.push_back(entry);
    }
  }

  std::vector<Item> process(const std::string& file_path, const std::string& folder,
                            const std::string& default_package,
                            const std::optional<std::string>& forced_package, bool primary,
                            int depth) {
    if (std::find(chain_.begin(), chain_.end(), file_path) != chain_.end()) {
      std::string cycle;
      for (const auto& f : chain_) cycle += f + " -> ";
      throw UserError(file_path + ": a defaults list includes this config inside itself (cycle: " +
                      cycle + file_path + ")");
    }
    check_user(depth < kMaxNesting, file_path + ": defaults lists nest more than " +
                                        std::to_string(kMaxNesting) + " levels (a cycle?)");
    check_user(++files_loaded_ <= kMaxConfigFiles,
               file_path + ": the defaults lists load more than " +
                   std::to_string(kMaxConfigFiles) + " config files");
    ConfigFile file = load_config_file(file_path);
    nodes_loaded_ += file.nodes;
    check_user(nodes_loaded_ <= kMaxComposedNodes,
               file_path + ": the configs of this composition hold more than " +
                   std::to_string(kMaxComposedNodes) + " values together");
    chain_.push_back(file_path);
    struct PopChain {
      std::vector<std::string>& chain;
      ~PopChain() { chain.pop_back(); }
    } pop_chain{chain_};
    std::string package = package_for(file, default_package, forced_package);
    const YAML::Node& const_content = file.content;
    std::vector<DefaultsEntry> entries = parse_defaults_list(const_content["defaults"], file_path);
    file.content.remove("defaults");
    if (primary) add_appends(entries);

    std::vector<std::vector<Item>> children(entries.size());
    for (size_t k = entries.size(); k-- > 0;) {
      const DefaultsEntry& e = entries[k];
      if (e.kind == DefaultsEntry::Kind::kSelf) continue;
      if (e.kind == DefaultsEntry::Kind::kConfig) {
        std::string name = folder.empty() ? *e.option : folder + "/" + *e.option;
        auto config_file = find_config_file(path_, name);
        check_user(config_file.has_value(),
                   e.where + ": config '" + name + ".yaml' not found in the search path");
        children[k] = process(*config_file, folder, package, std::nullopt, false, depth + 1);
        continue;
      }
      std::string group = absolute_group(e.group, folder);
      if (e.is_override) {
        group += e.package ? "@" + *e.package : "";
        check_user(!choices_.count(group),
                   e.where + ": 'override " + e.group + "' comes after config group '" + group +
                       "' was chosen; an override must come later in the defaults list "
                       "than the group it overrides");
        if (!config_overrides_.count(group)) config_overrides_[group] = {e.option, e.where};
        continue;
      }
      children[k] = choose(e, group, package, depth);
      if (group == "experiment")
        for (auto& item : children[k]) item.strict = true;
    }

    std::vector<Item> items;
    bool self_seen = false;
    for (size_t k = 0; k < entries.size(); ++k) {
      if (entries[k].kind == DefaultsEntry::Kind::kSelf) {
        check_user(!self_seen, entries[k].where + ": '_self_' appears twice");
        self_seen = true;
        items.push_back({file.content, package, file_path});
      }
      for (auto& item : children[k]) items.push_back(std::move(item));
    }
    if (!self_seen) items.push_back({file.content, package, file_path});
    return items;
  }

  // Picks the option for one group entry (command line > override entries > the entry) and
  // processes it.
  std::vector<Item> choose(const DefaultsEntry& e, const std::string& group,
                           const std::string& parent_package, int depth) {
    if (!groups_.count(group) && !e.optional) {
      std::vector<std::string> names;
      for (const auto& g : groups_) names.push_back(g.first);
      throw UserError(e.where + ": unknown config group '" + group + "'; available groups: " +
                      join_names(names, 100) + did_you_mean(group, names));
    }
    // The same group may be listed twice at different packages (group@pkg); choices, overrides
    // and duplicates are keyed by group@pkg.
    const std::string key = group + (e.package ? "@" + *e.package : "");
    check_user(!choices_.count(key),
               e.where + ": config group '" + key + "' appears twice in the defaults list");
    std::optional<std::string> option = e.option;
    std::string where = e.where;
    bool overridden = false;
    for (auto* table : {&cli_set_, &config_overrides_}) {  // the command line wins
      auto it = table->find(key);
      if (it == table->end()) continue;
      it->second.used = true;
      if (overridden) continue;
      overridden = true;
      option = it->second.option;
      where = it->second.where;
    }
    auto removal = cli_remove_.find(key);
    if (removal != cli_remove_.end()) {
      check_user(!remove_must_match_.count(group) || removal->second.option == option,
                 "cannot apply '" + removal->second.text + "': config group '" + group + "' is '" +
                     option_text(option) + "', not '" + option_text(removal->second.option) + "'");
      removal->second.used = true;
      option = std::nullopt;
    }
    choices_[key] = option_text(option);
    if (!option) return {};
    if (e.optional && !find_config_file(path_, group + "/" + *option)) return {};
    std::string file = find_or_fail(group, *option, where);
    std::optional<std::string> forced;
    if (e.package) {
      if (*e.package == "_global_" || e.package->rfind("_global_.", 0) == 0 ||
          parent_package.empty()) {
        forced = *e.package;
      } else {
        forced = parent_package + "." + *e.package;
      }
    }
    return process(file, group, dotted(group), forced, false, depth + 1);
  }

  const std::vector<std::string>& path_;
  const std::map<std::string, std::vector<std::string>>& groups_;
  std::map<std::string, ChoiceOverride> cli_set_, cli_remove_, config_overrides_;
  std::set<std::string> remove_must_match_;
  std::vector<Override> appends_;
  std::map<std::string, std::string> choices_;
  std::vector<std::string> chain_;  // files being processed, outermost first (cycle check)
  size_t files_loaded_ = 0;
  size_t nodes_loaded_ = 0;
};

}  // namespace

Composition compose_defaults_tree(const std::vector<std::string>& path,
                                  const std::map<std::string, std::vector<std::string>>& groups,
                                  const std::string& primary_file,
                                  const std::vector<Override>& group_overrides) {
  return DefaultsComposer(path, groups, group_overrides).run(primary_file);
}

}  // namespace attnlab::config
