// GDA growth by signal-head replication; see gda_grow.h.
#include "modules/attention/gda_grow.h"

#include "common/error.h"

namespace attnlab {

namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

const torch::Tensor& at_key(const std::map<std::string, torch::Tensor>& state,
                            const std::string& key) {
  auto it = state.find(key);
  check_user(it != state.end(), "grow: checkpoint has no '" + key + "'");
  return it->second;
}

}  // namespace

std::map<std::string, torch::Tensor> grow_gda_state(
    const std::map<std::string, torch::Tensor>& state, const GdaGrowOptions& options,
    GdaGrowReport* report) {
  torch::NoGradGuard no_grad;
  std::map<std::string, torch::Tensor> out = state;
  GdaGrowReport summary;
  const std::string q_key = "q_proj.weight";
  for (const auto& [key, q_weight] : state) {
    if (!ends_with(key, q_key)) continue;
    const std::string prefix = key.substr(0, key.size() - q_key.size());
    if (!state.count(prefix + "lambda_q1") || !state.count(prefix + "subln.weight")) continue;
    const int64_t d = at_key(state, prefix + "lambda_q1").size(0);
    const auto& out_weight = at_key(state, prefix + "out_proj.weight");
    const int64_t d_model = q_weight.size(1);
    const int64_t n_signal = out_weight.size(1) / (2 * d);
    const int64_t n_noise = q_weight.size(0) / d - n_signal;
    const int64_t n_kv = at_key(state, prefix + "k_proj.weight").size(0) / (2 * d);
    check_user(n_noise > 0 && n_signal % n_noise == 0,
               "grow: '" + prefix + "' is not a differential-attention layer layout");
    const int64_t target = options.n_signal;
    check_user(target >= n_signal && target % n_noise == 0,
               "grow: attention.n_signal=" + std::to_string(target) + " must be >= the current " +
                   std::to_string(n_signal) +
                   " and a multiple of n_noise=" + std::to_string(n_noise));
    const int64_t group = n_signal / n_noise, new_group = target / n_noise;
    // Old head j of a group is copied to j' = j, j + G, j + 2G, ... < G'.
    std::vector<int64_t> source(new_group), copies(group, 0);
    for (int64_t j = 0; j < new_group; ++j) ++copies[source[j] = j % group];

    auto q = q_weight.view({n_noise, group + 1, d, d_model});
    auto o = out_weight.view({out_weight.size(0), n_noise, group, 2 * d});
    std::vector<torch::Tensor> q_parts, o_parts;
    for (int64_t j = 0; j < new_group; ++j) {
      auto rows = q.select(1, source[j]).clone();
      if (j >= group && options.noise_std > 0)
        rows.add_(torch::randn_like(rows) * options.noise_std);
      q_parts.push_back(rows);
      o_parts.push_back(o.select(2, source[j]) / static_cast<double>(copies[source[j]]));
    }
    q_parts.push_back(q.select(1, group));  // the group's noise head stays last
    out[key] = torch::stack(q_parts, 1).reshape({(target + n_noise) * d, d_model});
    out[prefix + "out_proj.weight"] =
        torch::stack(o_parts, 2).reshape({out_weight.size(0), target * 2 * d});
    ++summary.layers;
    summary.old_signal = n_signal;
    summary.n_noise = n_noise;
    summary.n_kv = n_kv;
  }
  check_user(
      summary.layers > 0,
      "grow: no differential-attention layer (q_proj + lambda_q1 + subln) in the checkpoint");
  if (report) *report = summary;
  return out;
}

}  // namespace attnlab
