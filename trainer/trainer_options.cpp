// TrainerOptions::from_config: the `trainer` group bound once (trainer_options.h), plus the one
// rule that spans two values.
#include "trainer/trainer_options.h"

#include <yaml-cpp/yaml.h>

#include "common/config_access.h"
#include "common/error.h"
#include "config/options.h"

namespace attnlab {

template <class ConfigTree>
TrainerOptions TrainerOptions::from_config(const ConfigTree& config) {
  TrainerOptions options = config::bind<TrainerOptions>(cfg::find(config, "trainer"), "trainer");
  check_user(options.nonfinite().spike_window() != 1,
             "trainer.spike_window: a z-score needs a window of at least 2 steps (0 = off)");
  return options;
}

template TrainerOptions TrainerOptions::from_config(const YAML::Node&);

}  // namespace attnlab
