// Typed options bound from the composed config, in the PyTorch C++ idiom. A component declares
// its options once, as a struct of TORCH_ARG fields with their defaults, and lists the fields in a
// `visit` template (key, field, meaning, checks):
//
//   struct AdamWOptions {
//     TORCH_ARG(double, lr) = 1e-3;
//     TORCH_ARG(std::vector<double>, betas) = std::vector<double>{0.9, 0.95};
//    public:
//     template <class V> void visit(V& v) {
//       v("lr", lr(), "peak learning rate the schedule scales", config::at_least(0.0));
//       v("betas", betas(), "Adam's (beta1, beta2)", config::length_is(2));
//     }
//   };
//
// This header walks that list to
//   * bind<Options>(group, "optim"): the default-constructed struct with every key of the config
//     group applied. Values follow the override type rule (override_apply.h value_for_default:
//     the default's kind, int -> float promotion, scalars -> string); a key no field visits, a
//     value of the wrong type and a failed check are each one UserError line naming the dotted
//     key ("optim.lr: expected float, got 'abc'", "optim.grad_clip: expected a number >= 0, got
//     -1", "optim.lrr: optim 'adamw' has no option 'lrr'; its options: ... (did you mean lr?)");
//   * option_docs<Options>(): key, type, default, meaning and constraints of every field, for
//     `attnlab config --defaults`; defaults_yaml<Options>(): the defaults as a config group;
//   * differing_defaults<Options>(shipped, ...): each key whose value in a shipped configs/ file
//     differs from the struct default, so a test keeps the two homes of a default in step.
// Field types: bool, int64_t, double, std::string, std::vector of int64_t / double / std::string,
// std::optional<T> of those (null in the config), and nested options structs (a map, e.g.
// trainer.grades), which bind recursively under their own prefix. A nested struct visited with the
// empty key ("") is inlined: its fields sit beside the parent's in the same map (the `trainer`
// group holds the loop's, the guard's and the sampler's keys side by side, each part owning its
// struct).
//
// Component headers include only config/option_schema.h (no yaml-cpp). Their functions that read
// the config are templates over the config tree type (`template <class ConfigTree>`), defined and
// explicitly instantiated for YAML::Node in their .cpp, where this header does the binding.
#pragma once

#include <yaml-cpp/yaml.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/config_access.h"
#include "common/error.h"
#include "config/option_schema.h"
#include "config/override_apply.h"
#include "config/yaml_tree.h"

namespace attnlab::config {

namespace detail {

struct AnyVisitor {
  template <class... Args>
  void operator()(Args&&...) {}
};
template <class T, class = void>
struct is_options : std::false_type {};
template <class T>
struct is_options<T, std::void_t<decltype(std::declval<T&>().visit(std::declval<AnyVisitor&>()))>>
    : std::true_type {};
template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};
template <class T>
struct is_vector : std::false_type {};
template <class T>
struct is_vector<std::vector<T>> : std::true_type {};

std::string join_key(const std::string& prefix, const std::string& key);

// Scalars as config values (plain scalars whose kind the YAML core schema infers; strings
// quoted) and as text for messages and docs.
YAML::Node encode_value(bool value);
YAML::Node encode_value(int64_t value);
YAML::Node encode_value(double value);
YAML::Node encode_value(const std::string& value);
template <class T>
YAML::Node encode_value(const std::vector<T>& values) {
  YAML::Node list(YAML::NodeType::Sequence);
  for (const auto& value : values) list.push_back(encode_value(value));
  return list;
}
template <class T>
YAML::Node encode_value(const std::optional<T>& value) {
  return value ? encode_value(*value) : YAML::Node(YAML::NodeType::Null);
}

std::string format_value(bool value);
std::string format_value(int64_t value);
std::string format_value(double value);
std::string format_value(const std::string& value);
template <class T>
std::string format_value(const std::vector<T>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) out += (i ? ", " : "") + format_value(values[i]);
  return out + "]";
}
template <class T>
std::string format_value(const std::optional<T>& value) {
  return value ? format_value(*value) : "null";
}

template <class T>
std::string type_label() {
  if constexpr (is_optional<T>::value)
    return type_label<typename T::value_type>() + " or null";
  else
    return cfg::type_name<T>();
}

[[noreturn]] void wrong_type(const std::string& key, const std::string& type,
                             const YAML::Node& value);
[[noreturn]] void unknown_option(const std::string& key, const std::string& option,
                                 const std::string& owner, const std::vector<std::string>& options);
[[noreturn]] void not_a_map(const std::string& key, const YAML::Node& value);
void check_number(const Check& check, double value, const std::string& key);
void check_text(const Check& check, const std::string& value, const std::string& key);
void check_length(const Check& check, size_t length, const std::string& key,
                  const std::string& shown);
[[noreturn]] void check_does_not_apply(const Check& check, const std::string& key);

template <class T>
void apply_check(const Check& check, const T& value, const std::string& key) {
  if constexpr (is_optional<T>::value) {
    if (value) apply_check(check, *value, key);
  } else if constexpr (std::is_same_v<T, bool>) {
    check_does_not_apply(check, key);
  } else if constexpr (std::is_arithmetic_v<T>) {
    check_number(check, static_cast<double>(value), key);
  } else if constexpr (std::is_same_v<T, std::string>) {
    check_text(check, value, key);
  } else if constexpr (is_vector<T>::value) {
    if (check.applies() == Check::Applies::kLength) {
      check_length(check, value.size(), key, format_value(value));
    } else {
      for (size_t i = 0; i < value.size(); ++i)
        apply_check(check, value[i], key + "[" + std::to_string(i) + "]");
    }
  } else {
    check_does_not_apply(check, key);
  }
}

// `value` (present in the group) into `field` by the override type rule; UserError naming `key`.
template <class T>
void read_value(const YAML::Node& value, T& field, const std::string& key) {
  if (value.IsNull()) {
    if constexpr (is_optional<T>::value) {
      field = std::nullopt;
      return;
    } else {
      wrong_type(key, type_label<T>(), value);
    }
  }
  using Stored =
      typename std::conditional_t<is_optional<T>::value, T, std::optional<T>>::value_type;
  YAML::Node given = value;
  if constexpr (is_vector<Stored>::value) {
    // One value where a list is expected is a list of one ("routed_k: 2" for every layer).
    // reset(), not `=`: assigning to a node that refers to the config's node writes through.
    if (value.IsScalar()) {
      YAML::Node list(YAML::NodeType::Sequence);
      list.push_back(YAML::Clone(value));
      given.reset(list);
    }
  }
  std::optional<YAML::Node> stored = value_for_default(encode_value(field), given);
  if (!stored) wrong_type(key, type_label<T>(), value);
  try {
    if constexpr (is_optional<T>::value)
      field = stored->template as<typename T::value_type>();
    else
      field = stored->template as<T>();
  } catch (const YAML::Exception&) {
    wrong_type(key, type_label<T>(), value);
  }
}

inline bool is_inline(const char* key) { return key[0] == '\0'; }

// The keys an options struct visits, in order (an inlined struct's keys among them).
struct NameCollector {
  std::vector<std::string> names;
  template <class T, class... Checks>
  void operator()(const char* key, T& field, const char*, const Checks&...) {
    if constexpr (is_options<T>::value) {
      if (is_inline(key)) {
        field.visit(*this);
        return;
      }
    }
    names.emplace_back(key);
  }
};

template <class Options>
void bind_into(Options& options, const YAML::Node& group, const std::string& prefix,
               const BindScope& scope);

class Binder {
 public:
  Binder(const YAML::Node& group, const std::string& prefix) : group_(group), prefix_(prefix) {}

  template <class T, class... Checks>
  void operator()(const char* key, T& field, const char* /*meaning*/, const Checks&... checks) {
    if constexpr (is_options<T>::value) {
      static_assert(sizeof...(Checks) == 0, "a nested options struct checks its own fields");
      if (is_inline(key)) {
        field.visit(*this);  // the parent checked the map's keys, the inlined ones included
        return;
      }
    }
    const std::string dotted = join_key(prefix_, key);
    const YAML::Node value = child_node(group_, key);
    if constexpr (is_options<T>::value) {
      bind_into(field, value, dotted, BindScope{});
    } else {
      if (value.IsDefined()) read_value(value, field, dotted);
      // Defaults pass the checks as well as configured values (a bad default fails every bind).
      (apply_check(checks, field, dotted), ...);
    }
  }

 private:
  const YAML::Node& group_;
  const std::string& prefix_;
};

template <class Options>
void bind_into(Options& options, const YAML::Node& group, const std::string& prefix,
               const BindScope& scope) {
  if (group.IsDefined() && !group.IsNull()) {
    if (!group.IsMap()) not_a_map(prefix, group);
    NameCollector collector;
    options.visit(collector);
    for (auto it = group.begin(); it != group.end(); ++it) {
      const std::string key = it->first.Scalar();
      bool known = false;
      for (const auto& name : collector.names) known = known || name == key;
      for (const auto& name : scope.reserved) known = known || name == key;
      if (!known)
        unknown_option(join_key(prefix, key), key, scope.owner.empty() ? prefix : scope.owner,
                       collector.names);
    }
  }
  Binder binder(group, prefix);
  options.visit(binder);
}

class DocCollector {
 public:
  DocCollector(std::vector<OptionDoc>& docs, std::string prefix)
      : docs_(docs), prefix_(std::move(prefix)) {}

  template <class T, class... Checks>
  void operator()(const char* key, T& field, const char* meaning, const Checks&... checks) {
    const std::string dotted =
        prefix_.empty() || is_inline(key) ? prefix_ + key : prefix_ + "." + key;
    if constexpr (is_options<T>::value) {
      DocCollector nested(docs_, dotted);
      field.visit(nested);
    } else {
      std::string constraints;
      ((constraints += (constraints.empty() ? "" : "; ") + checks.expected()), ...);
      docs_.push_back({dotted, type_label<T>(), format_value(field), meaning, constraints});
    }
  }

 private:
  std::vector<OptionDoc>& docs_;
  std::string prefix_;
};

class YamlCollector {
 public:
  explicit YamlCollector(YAML::Node& map) : map_(map) {}
  template <class T, class... Checks>
  void operator()(const char* key, T& field, const char*, const Checks&...) {
    if constexpr (is_options<T>::value) {
      if (is_inline(key)) {
        field.visit(*this);
        return;
      }
      YAML::Node nested(YAML::NodeType::Map);
      YamlCollector collector(nested);
      field.visit(collector);
      map_[key] = nested;
    } else {
      map_[key] = encode_value(field);
    }
  }

 private:
  YAML::Node& map_;
};

}  // namespace detail

// The default-constructed Options with the keys of `group` (a map; undefined or null: none)
// applied; `prefix` is the group's dotted key ("optim", "trainer.grades") for messages.
template <class Options>
Options bind(const YAML::Node& group, const std::string& prefix, const BindScope& scope = {}) {
  Options options;
  detail::bind_into(options, group, prefix, scope);
  return options;
}

// The part of a shared group that one component reads: only the keys Options visits are bound
// (checked as bind checks them); the group's other keys belong to other parts and are left for
// their own binding. E.g. the device layer binds RuntimeOptions from the `trainer` group, whose
// loop keys the trainer binds. `group` undefined or null: the defaults.
template <class Options>
Options bind_part(const YAML::Node& group, const std::string& prefix) {
  if (!group.IsDefined() || group.IsNull()) return Options{};
  if (!group.IsMap()) detail::not_a_map(prefix, group);
  detail::NameCollector collector;
  Options options;
  options.visit(collector);
  YAML::Node part(YAML::NodeType::Map);
  for (const auto& name : collector.names)
    if (group[name].IsDefined()) part[name] = group[name];
  detail::bind_into(options, part, prefix, BindScope{});
  return options;
}

// Every field of `options` (default: the defaults), nested structs flattened to dotted keys.
template <class Options>
std::vector<OptionDoc> option_docs(Options options = Options{}) {
  std::vector<OptionDoc> docs;
  detail::DocCollector collector(docs, "");
  options.visit(collector);
  return docs;
}

// The defaults as a config group (a map; nested structs as nested maps, nullopt as null).
template <class Options>
YAML::Node defaults_yaml() {
  Options options;
  YAML::Node map(YAML::NodeType::Map);
  detail::YamlCollector collector(map);
  options.visit(collector);
  return map;
}

// "key: the shipped config says X, the struct default is Y" for each key of `shipped` (a config
// group file's map) whose value differs from the struct default. Keys the file leaves out use the
// struct default and never differ; a key that is no option or a bad value is the bind UserError.
template <class Options>
std::vector<std::string> differing_defaults(const YAML::Node& shipped, const std::string& prefix,
                                            const BindScope& scope = {}) {
  const std::vector<OptionDoc> configured = option_docs(bind<Options>(shipped, prefix, scope));
  const std::vector<OptionDoc> defaults = option_docs<Options>();
  std::vector<std::string> differences;
  for (size_t i = 0; i < defaults.size(); ++i)
    if (configured[i].default_value != defaults[i].default_value)
      differences.push_back(detail::join_key(prefix, defaults[i].key) +
                            ": the shipped config says " + configured[i].default_value +
                            ", the struct default is " + defaults[i].default_value);
  return differences;
}

// The options struct of a registry entry behind one interface (config::ErasedOptions in
// option_schema.h), for registries whose entries are added from their own rooms (attention
// modules): binding returns the struct in a std::any.
template <class Options>
ErasedOptions erase_options() {
  ErasedOptions erased;
  erased.bind = [](const YAML::Node& group, const std::string& prefix, const BindScope& scope) {
    return std::any(bind<Options>(group, prefix, scope));
  };
  erased.docs = [] { return option_docs<Options>(); };
  erased.differing_defaults = [](const YAML::Node& shipped, const std::string& prefix,
                                 const BindScope& scope) {
    return differing_defaults<Options>(shipped, prefix, scope);
  };
  return erased;
}

}  // namespace attnlab::config
