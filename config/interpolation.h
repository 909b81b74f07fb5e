// OmegaConf-style interpolation, resolved after composition and overrides:
//   ${a.b}                 absolute reference; ${.x} / ${..x} relative to the containing map
//   ${oc.env:VAR,default}  environment variable (default optional; 'null' gives null)
//   ${now:%Y-%m-%d_%H-%M-%S}  Hydra's `now` resolver: one timestamp per process (cached like
//                          Hydra's), so every key and every sweep job sees the same time
//   "runs/${name}/x"       interpolation inside a larger string gives a string
// A value that is exactly one interpolation keeps the referenced value's type (int, list, map);
// env values and defaults are typed by their text (so ${oc.env:N,4} reads as an int). "\${" is
// a literal "${". Cycles and dangling references are UserErrors naming the chain / key.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>

namespace attnlab::config {

// A resolved copy of `config`.
YAML::Node resolve_interpolations(const YAML::Node& config);

// strftime(format) of the process's first call time (local time).
std::string now_string(const std::string& format);

}  // namespace attnlab::config
