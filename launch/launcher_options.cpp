// The launcher registry and the binding of the launcher group; see launcher_options.h.
#include "launch/launcher_options.h"

#include <yaml-cpp/yaml.h>

#include <string>
#include <type_traits>

#include "common/config_access.h"
#include "config/options.h"

namespace attnlab {

Registry<LauncherSpec>& launcher_registry() {
  static Registry<LauncherSpec> registry(
      "launcher (launcher.name)",
      {{"local", {LocalLauncherOptions{}}}, {"slurm", {SlurmOptions{}}}});
  return registry;
}

template <class ConfigTree>
LauncherOptions launcher_options(const ConfigTree& config) {
  // No launcher.name (a config tree without the launcher group): sweeps run locally.
  const std::string name =
      cfg::has(config, "launcher.name") ? cfg::get<std::string>(config, "launcher.name") : "local";
  const config::BindScope scope{"launcher '" + name + "'", {"name"}};
  return std::visit(
      [&](const auto& defaults) -> LauncherOptions {
        using Options = std::decay_t<decltype(defaults)>;
        if constexpr (std::is_same_v<Options, SlurmOptions>)
          return slurm_options_from_config(config);  // with its checks against trainer.device
        else
          return config::bind<Options>(cfg::find(config, "launcher"), "launcher", scope);
      },
      launcher_registry().get(name).defaults);
}

template LauncherOptions launcher_options(const YAML::Node&);

}  // namespace attnlab
