// `attnlab probe [overrides]`: composes the config and runs the probe (probes/probe.h), e.g.
//   attnlab probe attention=diff probe.dtype=float64 probe.layer_index=3 probe.out=diff.pt
#include <yaml-cpp/yaml.h>

#include <iostream>

#include "cli/command.h"
#include "config/config.h"
#include "interop/hf/pretrained_config.h"
#include "probes/probe.h"

namespace attnlab {

int run_probe_command(const CommandArgs& args) {
  config::ComposeRequest request;
  request.overrides = args.overrides;
  request.config_dir = args.config_dir;
  YAML::Node config = compose_with_pretrained(request);
  const std::string path = run_probe(config);  // before printing: it may throw UserError
  std::cout << "probe written to " << path << "\n";
  return 0;
}

}  // namespace attnlab
