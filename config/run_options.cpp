// Binding of the run's top-level keys; see run_options.h.
#include "config/run_options.h"

#include <yaml-cpp/yaml.h>

#include "config/options.h"

namespace attnlab {

template <class ConfigTree>
RunOptions run_options(const ConfigTree& config) {
  return config::bind_part<RunOptions>(config, "");
}

template RunOptions run_options(const YAML::Node&);

}  // namespace attnlab
