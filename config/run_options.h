// The run's own keys: the top-level keys of configs/config.yaml beside its groups (name, seed,
// run.*, init_from, init_strict), as typed options with their defaults in this one struct (a test
// keeps configs/config.yaml equal to them). Any layer that needs one of them binds this part of
// the composed config with run_options(config) instead of reading the key with a fallback.
// Plain fields (this layer is below LibTorch): run_options(config).seed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "config/option_schema.h"

namespace attnlab {

// run.*: where the run's directory goes and whether an existing one is resumed.
struct RunDirectoryOptions {
  std::string dir = "runs/${name}/${now:%Y-%m-%d_%H-%M-%S}";
  std::string sweep_dir = "runs/multirun/${now:%Y-%m-%d_%H-%M-%S}";
  std::string resume = "auto";

  template <class V>
  void visit(V& v) {
    v("dir", dir, "the run directory (composed config, metrics, checkpoints)");
    v("sweep_dir", sweep_dir,
      "the parent directory of a multirun's jobs (job k in <sweep_dir>/<k>)");
    v("resume", resume,
      "auto: continue from the run directory's checkpoint when there is one; never: start over "
      "in place; must: fail unless there is a checkpoint to resume",
      config::one_of({"auto", "never", "must"}));
  }
};

struct RunOptions {
  std::string name = "default";
  int64_t seed = 1337;
  RunDirectoryOptions run;
  std::optional<std::string> init_from = std::nullopt;
  bool init_strict = false;

  template <class V>
  void visit(V& v) {
    v("name", name, "the run's name (in run.dir and in dashboards)");
    v("seed", seed, "seed of the weights, the data order and every random draw of the run");
    v("run", run, "the run directory");
    v("init_from", init_from,
      "initial weights: a checkpoint, a run directory, a PyTorch .pt state_dict or hf:<folder>");
    v("init_strict", init_strict, "init_from must fill every weight of the model");
  }
};

// The run's keys of a composed (or saved) config, bound strictly: a wrong type or value is one
// UserError line naming the key. Keys the config leaves out take the defaults above. Defined for
// YAML::Node.
template <class ConfigTree>
RunOptions run_options(const ConfigTree& config);

}  // namespace attnlab
