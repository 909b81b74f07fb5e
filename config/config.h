// The config engine's public API: Hydra-style composition of configs/config.yaml and its config
// groups, command-line overrides, interpolation and -m sweeps. Every failure caused by a config
// file or an override is an attnlab::UserError with one clear message.
//
// Composition (Hydra 1.1 semantics, see composer.cpp for the details):
//  * a config's `defaults:` list entries are `group: option`, `group: null`, `optional group:
//    option` (skipped when the option file is missing), `override group: option` (changes the
//    choice of a group listed elsewhere, e.g. inside an experiment), `_self_` (where the config's
//    own keys are merged; at the end when absent), and plain config names of the same folder.
//    `/group` is absolute; other groups inside a group option are relative to its folder.
//  * a group option's keys go under the group's name (model/gpt.yaml -> model.*) unless its
//    header says `# @package _global_` (top level) or `# @package a.b`; `group@pkg: option` in a
//    defaults list sets the package too.
//  * on the command line `group=option` / `group=null` changes a listed group, `+group=option`
//    appends one (or fills a `group: null` entry), `++group=option` does either, `~group[=opt]`
//    removes one; other overrides are value overrides (see override_apply.h).
#pragma once

#include <yaml-cpp/yaml.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/interpolation.h"
#include "config/search_path.h"

namespace attnlab::config {

struct ComposeRequest {
  std::vector<std::string> overrides;
  std::optional<std::string> config_dir;  // --config-dir
  std::string config_name = "config";
  bool resolve = true;  // resolve interpolations
};

// The composed config (overrides applied; resolved when request.resolve). Throws UserError.
YAML::Node compose(const ComposeRequest& request);

// The composed config plus the option chosen for each config group (for --help / provenance).
struct Composition {
  YAML::Node config;
  std::map<std::string, std::string> choices;  // group -> option ("null" when unset)
};
Composition compose_with_choices(const ComposeRequest& request);

struct SweepJob {
  int index;
  std::vector<std::string> overrides;
};
// The -m expansion: the cartesian product of every sweep override (a=1,2 / range() / choice() /
// group=glob()), first override varying slowest like Hydra's BasicSweeper; jobs 0..N-1. Plain
// overrides are copied into every job. Throws UserError for bad sweeps.
std::vector<SweepJob> expand_sweep(const ComposeRequest& request);

// Composes one sweep job: request's config dir and name, the job's overrides, and run.dir set to
// <run.sweep_dir>/<job.index> (default sweep dir: runs/multirun/${now:%Y-%m-%d_%H-%M-%S}).
YAML::Node compose_sweep_job(const ComposeRequest& request, const SweepJob& job);

// Applies value overrides (same grammar, minus group=option) onto an existing config, e.g. a run
// dir's saved config.yaml for `attnlab sample ... sample.temperature=0.8`; resolves
// interpolations afterwards when `resolve`.
YAML::Node apply_overrides(const YAML::Node& base, const std::vector<std::string>& overrides,
                           bool resolve = true);

// apply_overrides for a run's saved config (`attnlab eval` / `sample` on a run directory), where
// `group=option` of a top-level config group replaces the saved group by that option as
// composing with it makes it: `attnlab eval run_dir=R data=files data.train=notes.txt` evaluates R
// on another dataset. The group's option is looked up on `config_dir`'s search path; the other
// overrides then apply as apply_overrides applies them.
YAML::Node apply_overrides_to_saved(const YAML::Node& saved,
                                    const std::vector<std::string>& overrides,
                                    const std::optional<std::string>& config_dir = std::nullopt);

}  // namespace attnlab::config
