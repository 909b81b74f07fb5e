// Registry<Factory>: a small `name -> factory` table (torchtitan/fairseq style) so configs pick
// attention modules, losses, tokenizers, schedules... by name. Each part registers itself with
// one line in the registry's table (e.g. modules/attention_registry.cpp); unknown names list the
// available ones. Tables are explicit rather than static-initialiser magic, because static
// libraries silently drop object files that nothing references.
#pragma once

#include <initializer_list>
#include <map>
#include <string>
#include <vector>

#include "common/error.h"

namespace attnlab {

template <typename Factory>
class Registry {
 public:
  explicit Registry(std::string kind) : kind_(std::move(kind)) {}
  // The whole table in one place: Registry<F>("attention", {{"mha", make_mha}, ...}).
  Registry(std::string kind, std::initializer_list<std::pair<const std::string, Factory>> entries)
      : kind_(std::move(kind)), entries_(entries) {}

  bool add(const std::string& name, Factory factory) {
    entries_[name] = std::move(factory);
    return true;
  }

  bool contains(const std::string& name) const { return entries_.count(name) > 0; }

  const Factory& get(const std::string& name) const {
    auto it = entries_.find(name);
    if (it == entries_.end()) {
      std::string names;
      for (const auto& entry : entries_) names += (names.empty() ? "" : ", ") + entry.first;
      throw UserError("unknown " + kind_ + " '" + name + "'; available: " + names);
    }
    return it->second;
  }

  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& entry : entries_) out.push_back(entry.first);
    return out;
  }

 private:
  std::string kind_;
  std::map<std::string, Factory> entries_;
};

}  // namespace attnlab
