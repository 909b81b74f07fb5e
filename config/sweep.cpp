// expand_sweep() / compose_sweep_job(): Hydra's BasicSweeper. Each override contributes a list of
// values (one for plain overrides); jobs are the cartesian product with the first override
// varying slowest, numbered 0..N-1. All zip() overrides form one axis whose values are paired by
// position (an ablation that changes two keys together, e.g. parameter-matched widths).
#include <fnmatch.h>

#include <cstdint>
#include <set>

#include "common/error.h"
#include "common/suggestions.h"
#include "config/config.h"
#include "config/input_limits.h"
#include "config/override_parser.h"
#include "config/yaml_tree.h"

namespace attnlab::config {
namespace {

constexpr size_t kMaxJobs = 100000;

bool matches_any(const std::string& name, const std::vector<std::string>& patterns) {
  for (const auto& pattern : patterns)
    if (fnmatch(pattern.c_str(), name.c_str(), 0) == 0) return true;
  return false;
}

// The concrete override texts one (possibly sweeping) override stands for.
std::vector<std::string> sweep_values(
    const Override& o, const std::map<std::string, std::vector<std::string>>& groups) {
  if (!o.is_sweep()) return {o.text};
  std::string prefix = op_prefix(o.op) + o.key + "=";
  std::vector<std::string> out;
  if (o.sweep.kind == SweepSpec::Kind::kChoices) {
    for (const auto& item : o.sweep.items) out.push_back(prefix + item);
    return out;
  }
  auto group = groups.find(o.key);
  if (group == groups.end()) {
    std::vector<std::string> names;
    for (const auto& g : groups) names.push_back(g.first);
    throw UserError("cannot apply '" + o.text + "': glob() sweeps over the options of a config " +
                    "group, and '" + o.key + "' is not one; groups: " + join_names(names) +
                    did_you_mean(o.key, names));
  }
  for (const auto& option : group->second)
    if (matches_any(option, o.sweep.include) && !matches_any(option, o.sweep.exclude))
      out.push_back(prefix + option);
  check_user(!out.empty(), "'" + o.text + "' matches no option of config group '" + o.key +
                               "'; available: " + join_names(group->second, 100));
  return out;
}

// The command-line overrides plus the `sweep:` block of the config they compose (an experiment
// file's sweep), for keys the command line does not name.
std::vector<std::string> with_config_sweep(const ComposeRequest& request) {
  std::vector<std::string> overrides, fixed;
  std::set<std::string> named;
  for (const auto& text : request.overrides) {
    const Override parsed = parse_override(text);
    named.insert(parsed.key);
    if (!parsed.is_sweep()) fixed.push_back(text);
  }
  overrides = request.overrides;
  ComposeRequest base = request;
  base.overrides = fixed;
  base.resolve = false;
  const YAML::Node config = compose(base);
  const YAML::Node sweep = find_node(config, "sweep");
  if (!sweep.IsDefined() || sweep.IsNull()) return overrides;
  check_user(sweep.IsMap(),
             "config key 'sweep': expected a mapping of key: values, e.g. "
             "{attention: \"mha,diff\", seed: \"1,2,3\"}");
  for (const auto& item : sweep) {
    const std::string key = item.first.as<std::string>();
    check_user(item.second.IsScalar(),
               "config key 'sweep." + key +
                   "': expected the values as one string, as on the command line (\"1,2,3\", "
                   "\"range(1,4)\", \"zip(a,b)\")");
    if (named.count(key)) continue;  // the command line wins
    overrides.push_back(key + "=" + item.second.Scalar());
  }
  return overrides;
}

}  // namespace

std::vector<SweepJob> expand_sweep(const ComposeRequest& request) {
  auto groups = discover_groups(search_path(request.config_dir));
  const std::vector<std::string> all_overrides = with_config_sweep(request);
  // An axis is a list of entries, each entry the override texts one job gets from it: one text
  // for an ordinary override, one per zip() override for the zip axis (placed where the first
  // zip() override is), whose values are paired by position instead of multiplied.
  std::vector<std::vector<std::vector<std::string>>> axes;
  size_t total = 1, zip_axis = SIZE_MAX;
  std::string first_zip;
  for (const auto& text : all_overrides) {
    const Override parsed = parse_override(text);
    const std::vector<std::string> values = sweep_values(parsed, groups);
    if (parsed.sweep.function == "zip") {
      if (zip_axis == SIZE_MAX) {
        zip_axis = axes.size();
        first_zip = text;
        axes.emplace_back(values.size());
        total *= values.size();
      }
      auto& axis = axes[zip_axis];
      check_user(values.size() == axis.size(),
                 "zip() sweeps pair their values by position, so they need the same count: '" +
                     preview(first_zip) + "' has " + std::to_string(axis.size()) + ", '" +
                     preview(text) + "' has " + std::to_string(values.size()));
      for (size_t i = 0; i < values.size(); ++i) axis[i].push_back(values[i]);
    } else {
      axes.emplace_back();
      for (const auto& value : values) axes.back().push_back({value});
      total *= values.size();
    }
    check_user(total <= kMaxJobs, "the sweep has more than " + std::to_string(kMaxJobs) +
                                      " jobs (with override '" + preview(text) + "')");
  }
  std::vector<SweepJob> jobs;
  std::vector<size_t> index(axes.size(), 0);
  for (size_t n = 0; n < total; ++n) {
    SweepJob job{static_cast<int>(n), {}};
    for (size_t a = 0; a < axes.size(); ++a)
      for (const auto& text : axes[a][index[a]]) job.overrides.push_back(text);
    jobs.push_back(job);
    // Odometer: the last override varies fastest, the first slowest.
    for (size_t a = axes.size(); a-- > 0;) {
      if (++index[a] < axes[a].size()) break;
      index[a] = 0;
    }
  }
  return jobs;
}

YAML::Node compose_sweep_job(const ComposeRequest& request, const SweepJob& job) {
  ComposeRequest job_request = request;
  job_request.overrides = job.overrides;
  job_request.resolve = false;
  YAML::Node config = compose(job_request);
  YAML::Node sweep_dir = find_node(config, "run.sweep_dir");
  std::string base = sweep_dir.IsDefined() && sweep_dir.IsScalar()
                         ? sweep_dir.Scalar()
                         : std::string("runs/multirun/${now:%Y-%m-%d_%H-%M-%S}");
  set_node(config, "run.dir", string_scalar(base + "/" + std::to_string(job.index)));
  return request.resolve ? resolve_interpolations(config) : config;
}

}  // namespace attnlab::config
