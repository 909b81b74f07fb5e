// The objective registry: one line per objective (`objective.name`), each with its options
// struct, and the binding of the `objective:` group.
#include <yaml-cpp/yaml.h>

#include "common/config_access.h"
#include "config/options.h"
#include "tasks/lm/objectives/autoregressive.h"
#include "tasks/lm/objectives/masked_diffusion.h"
#include "trainer/objective.h"

namespace attnlab {

namespace {
template <class Impl, class Options>
ObjectiveSpec objective_entry() {
  ObjectiveSpec spec;
  spec.options = config::erase_options<Options>();
  spec.make = [](const std::any& options) -> std::unique_ptr<ObjectiveImpl> {
    return std::make_unique<Impl>(std::any_cast<const Options&>(options));
  };
  return spec;
}
}  // namespace

Registry<ObjectiveSpec>& objective_registry() {
  static Registry<ObjectiveSpec> registry(
      "objective",
      {{"autoregressive",
        objective_entry<AutoregressiveObjective, AutoregressiveObjectiveOptions>()},
       {"masked_diffusion",
        objective_entry<MaskedDiffusionObjective, MaskedDiffusionObjectiveOptions>()}});
  return registry;
}

template <class ConfigTree>
std::string objective_name(const ConfigTree& config) {
  const std::string name = cfg::get_or<std::string>(config, "objective.name", "autoregressive");
  objective_registry().get(name);  // an unknown name is a UserError listing the objectives
  return name;
}

template <class ConfigTree>
std::unique_ptr<ObjectiveImpl> make_objective(const ConfigTree& config) {
  const std::string name = objective_name(config);
  const ObjectiveSpec& spec = objective_registry().get(name);
  const config::BindScope scope{"objective '" + name + "'", {"name"}};
  return spec.make(spec.options.bind(cfg::find(config, "objective"), "objective", scope));
}

template std::string objective_name(const YAML::Node&);
template std::unique_ptr<ObjectiveImpl> make_objective(const YAML::Node&);

}  // namespace attnlab
