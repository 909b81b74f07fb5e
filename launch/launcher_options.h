// The launcher group (configs/launcher/*.yaml) as typed options (config/options.h): launcher.name
// picks an entry of launcher_registry(), local (LocalLauncherOptions: -m sweeps as child processes
// of this machine) or slurm (SlurmOptions, slurm_script.h: a batch job or job array), and that
// entry's options type binds the group strictly, so a key of the other launcher, a wrong type or
// an out-of-range value is one UserError naming the dotted key.
#pragma once

#include <torch/arg.h>

#include <cstdint>
#include <variant>

#include "common/registry.h"
#include "config/option_schema.h"
#include "launch/slurm_script.h"

namespace attnlab {

// launcher=local (configs/launcher/local.yaml holds the same values; a test keeps them equal).
struct LocalLauncherOptions {
  TORCH_ARG(int64_t, parallel) = 1;
  TORCH_ARG(bool, summarize) = true;

 public:
  template <class V>
  void visit(V& v) {
    v("parallel", parallel(), "jobs of a -m sweep that run at once", config::at_least(1));
    v("summarize", summarize(), "write summary.csv/.md/.png into the sweep dir at the end");
  }
};

// The options of the launcher launcher.name chose: one alternative per registry entry.
using LauncherOptions = std::variant<LocalLauncherOptions, SlurmOptions>;

// A registry entry: its options, default constructed (the alternative binding fills).
struct LauncherSpec {
  LauncherOptions defaults;
};
// name -> spec: local, slurm.
Registry<LauncherSpec>& launcher_registry();

// Binds the launcher group into the options of the launcher launcher.name names (default local,
// for a config tree without the group). UserError naming the key for an unknown name, key, type or
// value. Slurm's are bound by slurm_options_from_config (its checks against trainer.device
// included). Defined for YAML::Node.
template <class ConfigTree>
LauncherOptions launcher_options(const ConfigTree& config);

}  // namespace attnlab
